import { builder } from '../../graphql/builder.js';
import { HealthInfo } from '../../graphql/common.js';
import { badInput } from '../../lib/errors.js';
import { InfraNode, healthOf as nodeHealth } from '../nodes/index.js';
import { ProxyRef, proxyHealth } from '../proxies/index.js';
import { PROXMOX_LINK_TYPES, type ProxmoxLink } from './proxmox/inventory.js';
import { PROVIDERS, ROUTE_KINDS, type Route } from './types.js';

const RouteKindEnum = builder.enumType('RouteKind', {
  description: 'HTTP and STREAM routes are active; EXCLUDED ones failed validation (see `excludedReason`).',
  values: ROUTE_KINDS,
});

const ProxmoxLinkType = builder.enumType('ProxmoxLinkType', {
  description: 'A Proxmox node, or one of its LXC containers or (QEMU) VMs.',
  values: PROXMOX_LINK_TYPES,
});

const ProxmoxLinkObject = builder.objectRef<ProxmoxLink>('ProxmoxLink').implement({
  description: 'The Proxmox node or guest a route points at (by its upstream host, IP or alias).',
  fields: (t) => ({
    node: t.exposeString('node', { description: 'The node: the guest runs on it, or the node itself.' }),
    vmid: t.exposeInt('vmid', { description: "The guest's id; 0 for a node." }),
    vmName: t.exposeString('vmName', { nullable: true, description: "The guest's name; null for a node." }),
    type: t.field({ type: ProxmoxLinkType, resolve: (l) => l.type }),
  }),
});

const RouteObject = builder.objectRef<Route>('Route').implement({
  description: 'A route of the registry: traffic for `alias` (or `host`) goes to `upstreamUrl`.',
  fields: (t) => ({
    alias: t.exposeString('alias', { description: 'Lower case; an HTTP route serves `{alias}.*`.' }),
    kind: t.field({ type: RouteKindEnum, resolve: (r) => r.kind }),
    provider: t.exposeString('provider', { description: '`file`, `proxies` or `nodes`.' }),
    origin: t.exposeString('origin', {
      description: 'Where it was defined: `routes.yaml:line 4`, `proxy <id>`, `node <id>`.',
    }),
    upstreamUrl: t.exposeString('upstreamUrl', {
      nullable: true,
      description: 'http(s)://host:port/path, or tcp://host:port for STREAM; null when it could not be parsed.',
    }),
    host: t.string({
      nullable: true,
      description: 'The exact host it also serves (HTTP routes), lower case.',
      resolve: (r) => (r.kind === 'STREAM' ? null : r.host),
    }),
    listenPort: t.int({
      nullable: true,
      description: 'The port a STREAM route listens on.',
      resolve: (r) => (r.kind === 'HTTP' ? null : r.listenPort),
    }),
    connections: t.int({
      nullable: true,
      description: 'STREAM routes: connections open now; null for other kinds.',
      resolve: (r, _args, ctx) => (r.kind === 'STREAM' ? ctx.routes.streams.trafficOf(r.alias).connections : null),
    }),
    bytesIn: t.float({
      nullable: true,
      description: 'STREAM routes: bytes received from clients (and sent on) since start; null for other kinds.',
      resolve: (r, _args, ctx) => (r.kind === 'STREAM' ? ctx.routes.streams.trafficOf(r.alias).bytesIn : null),
    }),
    bytesOut: t.float({
      nullable: true,
      description: "STREAM routes: bytes sent to clients (the upstream's) since start; null for other kinds.",
      resolve: (r, _args, ctx) => (r.kind === 'STREAM' ? ctx.routes.streams.trafficOf(r.alias).bytesOut : null),
    }),
    proxmox: t.field({
      type: ProxmoxLinkObject,
      nullable: true,
      description:
        'The Proxmox node (vmid 0) or container/VM the upstream host, IP or alias matches; nodes win over guests. ' +
        'Null when none matches or PROXMOX_URL is not set.',
      resolve: (r, _args, ctx) => ctx.routes.proxmox?.linkOf(r) ?? null,
    }),
    excludedReason: t.string({
      nullable: true,
      description: 'Why the route is EXCLUDED; null for active routes.',
      resolve: (r) => (r.kind === 'EXCLUDED' ? r.excludedReason : null),
    }),
    proxy: t.field({
      type: ProxyRef,
      nullable: true,
      description: 'The proxy this route was made from (provider `proxies`).',
      resolve: (r, _args, ctx) => (r.ref?.kind === 'proxy' ? ctx.routes.origins(ctx).proxy.load(r.ref.id) : null),
    }),
    node: t.field({
      type: InfraNode,
      nullable: true,
      description: 'The node this route was made from (provider `nodes`).',
      resolve: (r, _args, ctx) => (r.ref?.kind === 'node' ? ctx.routes.origins(ctx).node.load(r.ref.id) : null),
    }),
    health: t.field({
      type: HealthInfo,
      description:
        "A route made from a proxy or a node reports that subject's health (it is not probed twice); " +
        'file routes are checked as routes. UNKNOWN for EXCLUDED routes.',
      resolve: async (r, _args, ctx) => {
        if (r.kind !== 'EXCLUDED' && r.ref?.kind === 'proxy') {
          const proxy = await ctx.routes.origins(ctx).proxy.load(r.ref.id);
          if (proxy) return proxyHealth(proxy);
        } else if (r.kind !== 'EXCLUDED' && r.ref?.kind === 'node') {
          const node = await ctx.routes.origins(ctx).node.load(r.ref.id);
          if (node) return nodeHealth(node);
        }
        return ctx.routes.health.info(r);
      },
    }),
  }),
});

interface ProviderRoutes {
  provider: string;
  routes: Route[];
}

const ProviderRoutesObject = builder.objectRef<ProviderRoutes>('ProviderRoutes').implement({
  fields: (t) => ({
    provider: t.exposeString('provider'),
    routes: t.field({ type: [RouteObject], resolve: (p) => p.routes }),
  }),
});

builder.queryFields((t) => ({
  routes: t.field({
    type: [RouteObject],
    description: 'Every route, or those of a kind and/or provider: HTTP, then STREAM, then EXCLUDED.',
    args: { kind: t.arg({ type: RouteKindEnum }), provider: t.arg.string() },
    authScopes: { viewer: true },
    resolve: (_root, { kind, provider }, ctx) => {
      if (provider != null) assertProvider(provider);
      return [...ctx.routes.list({ kind, provider })];
    },
  }),
  route: t.field({
    type: RouteObject,
    nullable: true,
    description: 'A route by alias (any case, a trailing dot allowed), from any pool; null when there is none.',
    args: { alias: t.arg.string({ required: true }) },
    authScopes: { viewer: true },
    resolve: (_root, { alias }, ctx) => ctx.routes.find(alias),
  }),
  routesByProvider: t.field({
    type: [ProviderRoutesObject],
    description: 'Routes grouped by provider, in precedence order (file, proxies, nodes); empty providers left out.',
    authScopes: { viewer: true },
    resolve: (_root, _args, ctx) =>
      [...ctx.routes.registry.byProvider()].map(([provider, routes]) => ({ provider, routes })),
  }),
}));

/** A provider that is not configured (no ROUTES_FILE) has no routes; a name that is none is a mistake. */
function assertProvider(provider: string): void {
  if (!(PROVIDERS as readonly string[]).includes(provider)) {
    throw badInput(`unknown provider "${provider}"; providers are ${PROVIDERS.join(', ')}`, 'provider');
  }
}
