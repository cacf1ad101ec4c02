import type { GraphQLResolveInfo } from 'graphql';
import type { Node } from '../../generated/prisma/client.js';
import type { NodeKind } from '../../generated/prisma/enums.js';
import { builder } from '../../graphql/builder.js';
import { connectionOf, HealthInfo, HealthStatusEnum } from '../../graphql/common.js';
import { selectedFieldNames, selectFor } from '../../graphql/selection.js';
import { StreamerClient } from './clients/index.js';
import { NODE_KINDS } from './kinds.js';
import { healthOf, type PingResult as PingResultShape } from './service.js';

const NodeKindEnum = builder.enumType('NodeKind', { values: ['STREAMER', 'CACHE', 'SLB'] as const });

export const InfraNode = builder.prismaInterface('Node', {
  name: 'InfraNode',
  resolveType: (node) => NODE_KINDS[node.kind].typeName,
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.expose('kind', { type: NodeKindEnum }),
    name: t.exposeString('name'),
    host: t.exposeString('host'),
    apiPort: t.exposeInt('apiPort'),
    status: t.expose('status', { type: HealthStatusEnum }),
    lastPingedAt: t.expose('lastPingedAt', { type: 'DateTime', nullable: true }),
    health: t.field({ type: HealthInfo, resolve: healthOf }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const Streamer = builder.prismaObject('Node', {
  variant: 'Streamer',
  interfaces: [InfraNode],
  fields: (t) => ({
    httpPort: t.int({ resolve: (node) => node.httpPort ?? 0 }),
    streams: t.field({
      type: 'JSON',
      nullable: true,
      description: "The node's streams (`GET /api/streams`), as the node reports them.",
      resolve: (node, _args, ctx) => ctx.nodes.callNode(node, StreamerClient, (c) => c.getStreams(), ctx.nodeBudget),
    }),
    traffic: t.field({
      type: 'JSON',
      nullable: true,
      description: "The node's traffic figures (`GET /api/traffic`), as the node reports them.",
      resolve: (node, _args, ctx) => ctx.nodes.callNode(node, StreamerClient, (c) => c.getTraffic(), ctx.nodeBudget),
    }),
  }),
});
const CacheNode = builder.prismaObject('Node', { variant: 'CacheNode', interfaces: [InfraNode], fields: () => ({}) });
const SlbNode = builder.prismaObject('Node', { variant: 'SlbNode', interfaces: [InfraNode], fields: () => ({}) });

const PingResult = builder.objectRef<PingResultShape>('PingResult').implement({
  fields: (t) => ({
    node: t.field({ type: InfraNode, resolve: (r) => r.node }),
    status: t.field({ type: HealthStatusEnum, resolve: (r) => r.status }),
    pingedAt: t.field({ type: 'DateTime', resolve: (r) => r.pingedAt }),
    latencyMs: t.float({ nullable: true, resolve: (r) => r.latencyMs }),
    error: t.string({ nullable: true, resolve: (r) => r.error }),
  }),
});

const CreateStreamerInput = builder.inputType('CreateStreamerInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    host: t.string({ required: true }),
    httpPort: t.int({ required: true }),
    apiPort: t.int({ required: true }),
  }),
});
const UpdateStreamerInput = builder.inputType('UpdateStreamerInput', {
  fields: (t) => ({ name: t.string(), host: t.string(), httpPort: t.int(), apiPort: t.int() }),
});
const CreateNodeInput = builder.inputType('CreateNodeInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    host: t.string({ required: true }),
    apiPort: t.int({ required: true }),
  }),
});
const UpdateNodeInput = builder.inputType('UpdateNodeInput', {
  fields: (t) => ({ name: t.string(), host: t.string(), apiPort: t.int() }),
});

/**
 * The columns each field of a node type reads (`kind`, for the concrete type, is always read).
 * `streams` and `traffic` are not listed: asking for them reads the whole row (selectFor).
 */
const NODE_FIELD_COLUMNS: Record<string, readonly (keyof Node)[]> = {
  id: ['id'],
  kind: ['kind'],
  name: ['name'],
  host: ['host'],
  apiPort: ['apiPort'],
  httpPort: ['httpPort'],
  status: ['status'],
  lastPingedAt: ['lastPingedAt'],
  createdAt: ['createdAt'],
  updatedAt: ['updatedAt'],
  health: ['status', 'lastPingedAt', 'healthLatencyMs', 'healthDetail', 'healthySince'],
};

/** The columns the nodes under `path` of this field need. */
const nodeColumns = (info: GraphQLResolveInfo, path: readonly string[]) =>
  selectFor(selectedFieldNames(info, path), NODE_FIELD_COLUMNS, ['id', 'kind']);

/** The same queries and mutations for every kind, named as the contract names them. */
const kinds = [
  {
    kind: 'STREAMER',
    type: Streamer,
    one: 'streamer',
    many: 'streamers',
    create: CreateStreamerInput,
    update: UpdateStreamerInput,
  },
  {
    kind: 'CACHE',
    type: CacheNode,
    one: 'cacheNode',
    many: 'cacheNodes',
    create: CreateNodeInput,
    update: UpdateNodeInput,
  },
  { kind: 'SLB', type: SlbNode, one: 'slbNode', many: 'slbNodes', create: CreateNodeInput, update: UpdateNodeInput },
] as const;

for (const { kind, type, one, many, create, update } of kinds) {
  const TypeName = NODE_KINDS[kind as NodeKind].typeName;
  const Connection = connectionOf(TypeName, type);
  builder.queryFields((t) => ({
    [many]: t.field({
      type: Connection,
      args: { first: t.arg.int(), after: t.arg.string() },
      authScopes: { viewer: true },
      // Only the columns the asked-for fields read (a whole row costs Prisma twice as much to map).
      resolve: (_root, args, ctx, info) =>
        ctx.nodes.list(
          kind,
          args,
          selectFor(selectedFieldNames(info, ['edges', 'node']), NODE_FIELD_COLUMNS, ['id', 'kind']),
        ),
    }),
    [one]: t.field({
      type,
      nullable: true,
      args: { id: t.arg.id({ required: true }) },
      authScopes: { viewer: true },
      resolve: (_root, { id }, ctx, info) => ctx.nodes.find(String(id), kind, nodeColumns(info, [])),
    }),
  }));
  builder.mutationFields((t) => ({
    [`create${TypeName}`]: t.field({
      type,
      args: { input: t.arg({ type: create, required: true }) },
      authScopes: { admin: true },
      resolve: (_root, { input }, ctx) => ctx.nodes.create(kind, input, ctx.actor),
    }),
    [`update${TypeName}`]: t.field({
      type,
      args: { id: t.arg.id({ required: true }), input: t.arg({ type: update, required: true }) },
      authScopes: { admin: true },
      resolve: (_root, { id, input }, ctx) => ctx.nodes.update(kind, String(id), input, ctx.actor),
    }),
    [`delete${TypeName}`]: t.id({
      args: { id: t.arg.id({ required: true }) },
      authScopes: { admin: true },
      resolve: (_root, { id }, ctx) => ctx.nodes.delete(kind, String(id), ctx.actor),
    }),
  }));
}

builder.queryField('infraNode', (t) =>
  t.field({
    type: InfraNode,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    authScopes: { viewer: true },
    resolve: (_root, { id }, ctx) => ctx.nodes.find(String(id)),
  }),
);

builder.mutationFields((t) => ({
  ping: t.field({
    type: PingResult,
    description:
      "Pings the node's `/api/ping` now (timeout HEALTH_CHECK_TIMEOUT_MS, default 5 s) and stores the result at once, " +
      "through the health monitor's anti-flap thresholds: `status` is this ping's own outcome, `node.status` the " +
      "node's status after the thresholds. A dead node is a result, not an error.",
    args: { id: t.arg.id({ required: true }) },
    authScopes: { operator: true },
    resolve: (_root, { id }, ctx) => ctx.nodes.ping(String(id)),
  }),
  createStream: t.field({
    type: 'JSON',
    nullable: true,
    description:
      "Creates a stream on a streamer (`POST /api/streams` with `input` as the body); returns the node's answer.",
    args: { streamerId: t.arg.id({ required: true }), input: t.arg({ type: 'JSON', required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { streamerId, input }, ctx) =>
      ctx.nodes.withStreamer(String(streamerId), (c) => c.createStream(input), ctx.nodeBudget),
  }),
  deleteStream: t.boolean({
    description: 'Deletes a stream on a streamer (`DELETE /api/streams/{streamId}`).',
    args: { streamerId: t.arg.id({ required: true }), streamId: t.arg.string({ required: true }) },
    authScopes: { admin: true },
    resolve: async (_root, { streamerId, streamId }, ctx) => {
      await ctx.nodes.withStreamer(String(streamerId), (c) => c.deleteStream(streamId), ctx.nodeBudget);
      return true;
    },
  }),
}));
