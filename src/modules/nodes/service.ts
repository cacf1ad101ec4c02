import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { type Node, Prisma } from '../../generated/prisma/client.js';
import type { HealthStatus, NodeKind } from '../../generated/prisma/enums.js';
import { appError, conflict, notFound, upstreamUnavailable } from '../../lib/errors.js';
import { type PageArgs, pageQuery, toPage } from '../../lib/pagination.js';
import { parseInput } from '../../lib/validate.js';
import type { Audit } from '../events/bus.js';
import { type HealthInfoShape, healthInfo } from '../health/info.js';
import type { HealthMonitor } from '../health/monitor.js';
import type { NodeCallBudget } from './budget.js';
import type { AnswerMeter } from './clients/base.js';
import { NodeApiError, type NodeEndpoint, StreamerClient } from './clients/index.js';
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
  /** Told when a node is deleted or moved, so no check of the old one is announced or written. */
  health: Pick<HealthMonitor, 'forget'>;
}

export async function createNode(
  { db, nodeDirectory, events, principal }: NodeStore & Audit,
  kind: NodeKind,
  input: unknown,
): Promise<Node> {
  const schema: z.ZodType<{ name: string; host: string; apiPort: number; httpPort?: number }> =
    kind === 'STREAMER' ? createStreamerSchema : createNodeSchema;
  const data = parseInput(schema, input, 'input');
  const node = await withConflictAsError(kind, data.name, () => db.node.create({ data: { ...data, kind } }));
  nodeDirectory.forget(node.id);
  // Awaited: once the mutation answers, its audit entry is in the log.
  await events.record(
    {
      type: 'node.created',
      source: 'nodes',
      severity: 'INFO',
      message: `${NODE_KINDS[kind].label} "${node.name}" created (${node.host}:${node.apiPort})`,
      details: { ...nodeRef(node), host: node.host, apiPort: node.apiPort },
    },
    auditActor(principal),
  );
  return node;
}

const UNCHECKED = {
  status: 'UNKNOWN',
  lastPingedAt: null,
  healthLatencyMs: null,
  healthDetail: null,
  healthySince: null,
} as const satisfies Partial<Node>;

export async function updateNode(
  { db, nodeDirectory, health, events, principal }: NodeStore & Audit,
  kind: NodeKind,
  id: string,
  input: unknown,
): Promise<Node> {
  const schema: z.ZodType<{ name?: string; host?: string; apiPort?: number; httpPort?: number }> =
    kind === 'STREAMER' ? updateStreamerSchema : updateNodeSchema;
  const data = parseInput(schema, input, 'input');
  if (!isUuid(id)) throw notFound(NODE_KINDS[kind].label, id);
  // A node given a new address has no health yet: what was observed at the old one says nothing
  // about the new one. UNKNOWN until its next check decides (the monitor re-reads the stored state).
  const before = data.host !== undefined || data.apiPort !== undefined ? await findNode(db, id, kind) : null;
  const moved =
    before !== null &&
    (before.host !== (data.host ?? before.host) || before.apiPort !== (data.apiPort ?? before.apiPort));
  const write = moved ? { ...data, ...UNCHECKED } : data;
  let node: Node;
  try {
    node = await withConflictAsError(kind, data.name, () => db.node.update({ where: { id, kind }, data: write }));
    if (moved) health.forget('NODE', id);
    nodeDirectory.forget(id);
  } catch (error) {
    if (isPrismaError(error, 'P2025')) throw notFound(NODE_KINDS[kind].label, id);
    throw error;
  }
  // `changes`: the fields the input set, with the values they now have.
  await events.record(
    {
      type: 'node.updated',
      source: 'nodes',
      severity: 'INFO',
      message: `${NODE_KINDS[kind].label} "${node.name}" updated: ${Object.keys(data).join(', ') || 'nothing'}`,
      details: { ...nodeRef(node), changes: { ...data } },
    },
    auditActor(principal),
  );
  return node;
}

export async function deleteNode(
  { db, nodeDirectory, health, events, principal }: NodeStore & Audit,
  kind: NodeKind,
  id: string,
): Promise<string> {
  if (!isUuid(id)) throw notFound(NODE_KINDS[kind].label, id);
  let node: Node;
  try {
    // One statement (DELETE … RETURNING): the audit entry names what was deleted.
    node = await db.node.delete({ where: { id, kind } });
  } catch (error) {
    if (isPrismaError(error, 'P2025')) throw notFound(NODE_KINDS[kind].label, id);
    throw error;
  } finally {
    nodeDirectory.forget(id);
  }
  health.forget('NODE', id);
  await events.record(
    {
      type: 'node.deleted',
      source: 'nodes',
      severity: 'INFO',
      message: `${NODE_KINDS[kind].label} "${node.name}" deleted`,
      details: nodeRef(node),
    },
    auditActor(principal),
  );
  return id;
}

const nodeRef = (node: Node) => ({ id: node.id, kind: node.kind, name: node.name });
/** The principal as the log records it (not its role). */
const auditActor = (principal: Audit['principal']) => ({ id: principal.id, name: principal.name });

export interface PingResult {
  node: Node;
  /** This ping's own outcome (the node's status after the thresholds is `node.status`). */
  status: HealthStatus;
  pingedAt: Date;
  latencyMs: number | null;
  error: string | null;
}

/**
 * Pings a node's `/api/ping` now, through the health monitor: the same timeout and anti-flap
 * thresholds as its scheduled checks, and the result stored at once. A dead node is a result
 * (UNHEALTHY with the reason), not an error. A node deleted while it was pinged gets no write
 * and is NOT_FOUND; one moved meanwhile keeps what its new address says.
 */
export async function pingNode({ db, health }: { db: Db; health: HealthMonitor }, id: string): Promise<PingResult> {
  const check = isUuid(id) ? await health.checkNow(health.nodes, id) : null;
  if (!check) throw notFound('node', id);
  const node = await findNode(db, id);
  if (!node) throw notFound('node', id);
  const { result, checkedAt } = check;
  return {
    node,
    status: result.status,
    pingedAt: checkedAt,
    latencyMs: result.latencyMs,
    error: result.status === 'HEALTHY' ? null : result.detail,
  };
}

/** A streamer's id looked up, then a call to its own API (see callNode). */
export async function withStreamer<T>(
  store: NodeStore & { nodeBudget?: NodeCallBudget },
  id: string,
  call: (client: StreamerClient) => Promise<T>,
): Promise<T> {
  const node = await findNode(store.db, id, 'STREAMER');
  if (!node) throw notFound('streamer', id);
  return callNode(store, node, StreamerClient, call);
}

/**
 * Runs a call against a node's own API, within the operation's budget when it has one (one call,
 * its answer's bytes); an unreachable or failing node is UPSTREAM_UNAVAILABLE.
 */
export async function callNode<C, T>(
  { nodeAgent, nodeBudget }: Pick<NodeStore, 'nodeAgent'> & { nodeBudget?: NodeCallBudget },
  node: Pick<Node, 'id' | 'kind' | 'host' | 'apiPort'>,
  Client: new (endpoint: NodeEndpoint, agent: Dispatcher, meter?: AnswerMeter) => C,
  call: (client: C) => Promise<T>,
): Promise<T> {
  nodeBudget?.take();
  try {
    return await call(new Client(node, nodeAgent, nodeBudget));
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

/** HealthInfo of a node from its stored columns (uptime counted from `healthySince`). */
export function healthOf(node: Node): HealthInfoShape {
  return healthInfo({
    status: node.status,
    checkedAt: node.lastPingedAt,
    latencyMs: node.healthLatencyMs,
    detail: node.healthDetail,
    healthySince: node.healthySince,
  });
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
