import { builder } from '../../graphql/builder.js';
import { connectionOf, HealthInfo } from '../../graphql/common.js';
import { proxyHealth } from './health.js';
import type { AllProxies, NpmStatus, ProxyListing } from './listing.js';
import type { ProxyPayload } from './service.js';
import type { ValidationResult, ValidationStep } from './validation/types.js';

const ValidationStepNameEnum = builder.enumType('ValidationStepName', {
  values: ['SYNTAX', 'DNS', 'TCP', 'HTTP'] as const,
});

const ValidationStepRef = builder.objectRef<ValidationStep>('ValidationStep').implement({
  description: 'One step of destination validation: what it found, and on failure what to do about it.',
  fields: (t) => ({
    name: t.field({ type: ValidationStepNameEnum, resolve: (s) => s.name }),
    ok: t.exposeBoolean('ok'),
    durationMs: t.exposeFloat('durationMs'),
    detail: t.exposeString('detail', { nullable: true }),
    hint: t.exposeString('hint', { nullable: true }),
  }),
});

const ValidationResultRef = builder.objectRef<ValidationResult>('ValidationResult').implement({
  description: 'SYNTAX → DNS → TCP → HTTP, stopping at the first failure (later steps are absent).',
  fields: (t) => ({
    ok: t.exposeBoolean('ok'),
    steps: t.field({ type: [ValidationStepRef], resolve: (r) => r.steps }),
  }),
});

/** A step as the progress subscription streams it. */
interface ValidationProgress {
  step: ValidationStep;
  done: boolean;
  ok: boolean | null;
}

const ValidationProgressRef = builder.objectRef<ValidationProgress>('ValidationProgress').implement({
  description: 'One completed step of validateProxyProgress; the last one has `done: true` and the overall `ok`.',
  fields: (t) => ({
    step: t.field({ type: ValidationStepRef, resolve: (p) => p.step }),
    done: t.exposeBoolean('done'),
    ok: t.exposeBoolean('ok', { nullable: true, description: 'The overall result, on the last step only.' }),
  }),
});

export const ProxyRef = builder.prismaObject('Proxy', {
  description: 'A reverse proxy: requests for `domain` go to `destination`.',
  fields: (t) => ({
    id: t.exposeID('id'),
    domain: t.exposeString('domain'),
    destination: t.exposeString('destination'),
    sslCertificateId: t.exposeInt('sslCertificateId', {
      nullable: true,
      description:
        'The Nginx Proxy Manager certificate assigned when the proxy was synced (settings.sslCertificateId).',
    }),
    npmHostId: t.exposeInt('npmHostId', {
      nullable: true,
      description: 'Its Nginx Proxy Manager proxy host, when sync is on.',
    }),
    health: t.field({ type: HealthInfo, resolve: proxyHealth }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const ProxyConnection = connectionOf('Proxy', ProxyRef);

const ProxyPayloadRef = builder.objectRef<ProxyPayload>('ProxyPayload').implement({
  fields: (t) => ({
    proxy: t.field({
      type: ProxyRef,
      nullable: true,
      description: 'Null when validation failed: then nothing was created or changed.',
      resolve: (p) => p.proxy,
    }),
    validation: t.field({
      type: ValidationResultRef,
      description: 'An update that keeps the destination is not re-validated: `ok: true` with no steps.',
      resolve: (p) => p.validation,
    }),
  }),
});

const ProxySourceEnum = builder.enumType('ProxySource', { values: ['STREAMGATE', 'NPM'] as const });

const ProxyListingRef = builder.objectRef<ProxyListing>('ProxyListing').implement({
  description: 'A StreamGate proxy, or a proxy host only Nginx Proxy Manager knows (read-only here).',
  fields: (t) => ({
    source: t.field({ type: ProxySourceEnum, resolve: (l) => l.source }),
    readOnly: t.exposeBoolean('readOnly'),
    domains: t.exposeStringList('domains'),
    destination: t.exposeString('destination'),
    proxy: t.field({ type: ProxyRef, nullable: true, resolve: (l) => l.proxy }),
    npmHostId: t.exposeInt('npmHostId', { nullable: true }),
    inSync: t.exposeBoolean('inSync', {
      nullable: true,
      description:
        "StreamGate proxies with sync on: whether NPM's host exists and forwards as the proxy says. " +
        'False on an NPM host StreamGate created but never recorded (an orphan). Null otherwise.',
    }),
    enabled: t.exposeBoolean('enabled'),
    sslCertificateId: t.exposeInt('sslCertificateId', { nullable: true }),
  }),
});

const NpmStatusRef = builder.objectRef<NpmStatus>('NpmSyncStatus').implement({
  fields: (t) => ({
    enabled: t.exposeBoolean('enabled', { description: 'NPM_URL and credentials are configured.' }),
    reachable: t.exposeBoolean('reachable', { nullable: true }),
    error: t.exposeString('error', { nullable: true }),
  }),
});

const AllProxiesRef = builder.objectRef<AllProxies>('AllProxies').implement({
  fields: (t) => ({
    items: t.field({ type: [ProxyListingRef], resolve: (a) => a.items }),
    npm: t.field({ type: NpmStatusRef, resolve: (a) => a.npm }),
  }),
});

const ValidateProxyInput = builder.inputType('ValidateProxyInput', {
  fields: (t) => ({ destination: t.string({ required: true }) }),
});
const CreateProxyInput = builder.inputType('CreateProxyInput', {
  fields: (t) => ({
    domain: t.string({ required: true, description: 'A host name; stored lower-case without a trailing dot.' }),
    destination: t.string({ required: true, description: 'An absolute http:// or https:// URL.' }),
  }),
});
const UpdateProxyInput = builder.inputType('UpdateProxyInput', {
  fields: (t) => ({ domain: t.string(), destination: t.string() }),
});

builder.queryFields((t) => ({
  proxies: t.field({
    type: ProxyConnection,
    args: { first: t.arg.int(), after: t.arg.string() },
    authScopes: { viewer: true },
    resolve: (_root, args, ctx) => ctx.proxies.list(args),
  }),
  proxy: t.prismaField({
    type: 'Proxy',
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    authScopes: { viewer: true },
    resolve: (_query, _root, { id }, ctx) => ctx.proxies.find(String(id)),
  }),
  allProxies: t.field({
    type: AllProxiesRef,
    description:
      "StreamGate's proxies plus Nginx Proxy Manager's other proxy hosts (read-only). When NPM cannot be " +
      'read, the list holds StreamGate’s proxies and `npm.error` says why.',
    authScopes: { viewer: true },
    resolve: (_root, _args, ctx) => ctx.proxies.allProxies(),
  }),
}));

builder.mutationFields((t) => ({
  validateProxy: t.field({
    type: ValidationResultRef,
    description: 'Runs the validation pipeline on a destination; nothing is created.',
    args: { input: t.arg({ type: ValidateProxyInput, required: true }) },
    authScopes: { operator: true },
    resolve: (_root, { input }, ctx) => ctx.proxies.validate(input.destination, ctx.signal),
  }),
  createProxy: t.field({
    type: ProxyPayloadRef,
    description: 'Validates the destination, then creates the proxy (and its NPM host when sync is on).',
    args: { input: t.arg({ type: CreateProxyInput, required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { input }, ctx) => ctx.proxies.create(input, ctx.actor, ctx.signal),
  }),
  updateProxy: t.field({
    type: ProxyPayloadRef,
    description: 'Re-validates when the destination changes; keeps the NPM host in step.',
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateProxyInput, required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { id, input }, ctx) => ctx.proxies.update(String(id), input, ctx.actor, ctx.signal),
  }),
  deleteProxy: t.id({
    description: 'Deletes the proxy and its NPM host (a host already gone from NPM is fine).',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { id }, ctx) => ctx.proxies.delete(String(id), ctx.actor),
  }),
}));

builder.subscriptionField('validateProxyProgress', (t) =>
  t.field({
    type: ValidationProgressRef,
    description: 'validateProxy, one event per step as it completes (the same pipeline), for progress in a UI.',
    args: { input: t.arg({ type: ValidateProxyInput, required: true }) },
    authScopes: { operator: true },
    subscribe: (_root, { input }, ctx) => progress(ctx.proxies.validateSteps.bind(ctx.proxies), input.destination),
    resolve: (item: ValidationProgress) => item,
  }),
);

/**
 * The steps with `done` on the last one, known without waiting: a failed step ends the pipeline,
 * and HTTP is the last step. A hand-written iterator rather than a generator, so that a client
 * leaving mid-step aborts that step at once (a generator's return() waits for its next yield).
 */
function progress(
  steps: (destination: string, signal: AbortSignal) => AsyncGenerator<ValidationStep>,
  destination: string,
): AsyncIterableIterator<ValidationProgress> {
  const controller = new AbortController();
  const inner = steps(destination, controller.signal);
  const finished = { done: true, value: undefined } as const;
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      try {
        const next = await inner.next();
        if (next.done) return finished;
        const step = next.value;
        const done = !step.ok || step.name === 'HTTP';
        return { done: false, value: { step, done, ok: done ? step.ok : null } };
      } catch (error) {
        if (controller.signal.aborted) return finished;
        throw error;
      }
    },
    async return() {
      controller.abort();
      inner.return(undefined).catch(() => {});
      return finished;
    },
  };
}
