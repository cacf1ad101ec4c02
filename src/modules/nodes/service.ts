import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { type Node, Prisma } from '../../generated/prisma/client.js';
import type { HealthStatus, NodeKind } from '../../generated/prisma/enums.js';
import type { HealthInfoShape } from '../../graphql/common.js';
import { appError, conflict, notFound, upstreamUnavailable } from '../../lib/errors.js';
import { type PageArgs, pageQuery, toPage } from '../../lib/pagination.js';
import { parseInput } from '../../lib/validate.js';
import { clientFor, NodeApiError, type NodeEndpoint, StreamerClient } from './clients/index.js';
import type { NodeDirectory } from './directory.js';
import { NODE_KINDS } from './kinds.js';
import {
  createNodeSchema,
  createStreamerSchema,
  isUuid,
  updateNodeSchema,
  updateStreamerSchema,
} from './validation.js';

export type { Node };

const CURSOR_PREFIX = 'node';

export async function listNodes(db: Db, kind: NodeKind, args: PageArgs) {
  const query = pageQuery(CURSOR_PREFIX, args, isUuid);
  const rows = await db.node.findMany({
    where: { kind, ...(query.afterKey ? { id: { gt: query.afterKey } } : {}) },
    orderBy: { id: 'asc' },
    take: query.take,
  });
  return toPage(CURSOR_PREFIX, rows, query, (n) => n.id);
}

/** A node by id (of one kind, when given); null for unknown or malformed ids. */
export async function findNode(db: Db, id: string, kind?: NodeKind): Promise<Node | null> {
  if (!isUuid(id)) return null;
  const node = await db.node.findUnique({ where: { id } });
  return node && (kind === undefined || node.kind === kind) ? node : null;
}

/** What node operations need: the registry, the passthrough's directory, the HTTP agent. */
export interface NodeStore {
  db: Db;
  nodeDirectory: NodeDirectory;
  nodeAgent: Dispatcher;
}

export async function createNode({ db, nodeDirectory }: NodeStore, kind: NodeKind, input: unknown): Promise<Node> {
  const schema: z.ZodType<{ name: string; host: string; apiPort: number; httpPort?: number }> =
    kind === 'STREAMER' ? createStreamerSchema : createNodeSchema;
  const data = parseInput(schema, input, 'input');
  const node = await withConflictAsError(kind, data.name, () => db.node.create({ data: { ...data, kind } }));
  nodeDirectory.forget(node.id);
  return node;
}

export async function updateNode(
  { db, nodeDirectory }: NodeStore,
  kind: NodeKind,
  id: string,
  input: unknown,
): Promise<Node> {
  const schema: z.ZodType<{ name?: string; host?: string; apiPort?: number; httpPort?: number }> =
    kind === 'STREAMER' ? updateStreamerSchema : updateNodeSchema;
  const data = parseInput(schema, input, 'input');
  if (!isUuid(id)) throw notFound(NODE_KINDS[kind].label, id);
  try {
    const node = await withConflictAsError(kind, data.name, () => db.node.update({ where: { id, kind }, data }));
    nodeDirectory.forget(id);
    return node;
  } catch (error) {
    if (isPrismaError(error, 'P2025')) throw notFound(NODE_KINDS[kind].label, id);
    throw error;
  }
}

export async function deleteNode({ db, nodeDirectory }: NodeStore, kind: NodeKind, id: string): Promise<string> {
  const { count } = isUuid(id) ? await db.node.deleteMany({ where: { id, kind } }) : { count: 0 };
  nodeDirectory.forget(id);
  if (count === 0) throw notFound(NODE_KINDS[kind].label, id);
  return id;
}

export interface PingResult {
  node: Node;
  status: HealthStatus;
  pingedAt: Date;
  latencyMs: number;
  error: string | null;
}

/**
 * Pings a node's `/api/ping` and records the outcome on the node. A dead node is a result
 * (UNHEALTHY with the reason), not an error. A node deleted while it was being pinged is not
 * written back.
 */
export async function pingNode({ db, nodeAgent }: NodeStore, id: string): Promise<PingResult> {
  const node = await findNode(db, id);
  if (!node) throw notFound('node', id);
  const outcome = await clientFor(node.kind, node, nodeAgent).ping();
  const pingedAt = new Date();
  const status: HealthStatus = outcome.ok ? 'HEALTHY' : 'UNHEALTHY';
  const detail = outcome.error ?? `HTTP ${outcome.statusCode}`;
  const healthySince = outcome.ok ? (node.status === 'HEALTHY' ? node.healthySince : pingedAt) : null;
  const data = {
    status,
    lastPingedAt: pingedAt,
    healthLatencyMs: outcome.latencyMs,
    healthDetail: detail,
    healthySince,
  };
  // Only if the node still has the address we pinged: a host change meanwhile wins.
  const { count } = await db.node.updateMany({ where: { id, host: node.host, apiPort: node.apiPort }, data });
  return {
    node: count === 1 ? { ...node, ...data } : node,
    status,
    pingedAt,
    latencyMs: outcome.latencyMs,
    error: outcome.error ?? null,
  };
}

/** A streamer's id looked up, then a call to its own API (see callNode). */
export async function withStreamer<T>(
  store: NodeStore,
  id: string,
  call: (client: StreamerClient) => Promise<T>,
): Promise<T> {
  const node = await findNode(store.db, id, 'STREAMER');
  if (!node) throw notFound('streamer', id);
  return callNode(store, node, StreamerClient, call);
}

/** Runs a call against a node's own API; an unreachable or failing node is UPSTREAM_UNAVAILABLE. */
export async function callNode<C, T>(
  { nodeAgent }: Pick<NodeStore, 'nodeAgent'>,
  node: Pick<Node, 'id' | 'kind' | 'host' | 'apiPort'>,
  Client: new (endpoint: NodeEndpoint, agent: Dispatcher) => C,
  call: (client: C) => Promise<T>,
): Promise<T> {
  try {
    return await call(new Client(node, nodeAgent));
  } catch (error) {
    if (!(error instanceof NodeApiError)) throw error;
    const message = `${NODE_KINDS[node.kind].label} ${node.id}: ${error.message}`;
    // The node's own verdict on what we asked, passed on; its failures are ours to report.
    if (error.statusCode === 404) throw appError('NOT_FOUND', message);
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500)
      throw appError('BAD_USER_INPUT', message);
    throw upstreamUnavailable(message);
  }
}

/** HealthInfo of a node from its stored columns. */
export function healthOf(node: Node): HealthInfoShape {
  return {
    status: node.status,
    checkedAt: node.lastPingedAt,
    latencyMs: node.healthLatencyMs,
    uptimeSeconds:
      node.healthySince && node.status === 'HEALTHY' ? (Date.now() - node.healthySince.getTime()) / 1000 : null,
    detail: node.healthDetail,
  };
}

async function withConflictAsError<T>(kind: NodeKind, name: string | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isPrismaError(error, 'P2002')) {
      throw conflict(`a ${NODE_KINDS[kind].label} named "${name}" already exists`, 'input.name');
    }
    throw error;
  }
}

function isPrismaError(error: unknown, code: string): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === code;
}
