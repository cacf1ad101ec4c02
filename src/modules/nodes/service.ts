import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { isRecordNotFound, isUniqueViolation } from '../../db/errors.js';
import type { Node } from '../../generated/prisma/client.js';
import type { HealthStatus, NodeKind } from '../../generated/prisma/enums.js';
import { appError, badInput, conflict, notFound, upstreamUnavailable } from '../../lib/errors.js';
import type { OutboundPolicy } from '../../lib/outbound.js';
import { type PageArgs, pageQuery, toPage } from '../../lib/pagination.js';
import { isUuid } from '../../lib/uuid.js';
import { parseInput } from '../../lib/validate.js';
import type { Actor, EventBus } from '../events/index.js';
import { type HealthInfoShape, type HealthMonitor, healthInfo } from '../health/index.js';
import type { NodeCallBudget } from './budget.js';
import type { AnswerMeter } from './clients/base.js';
import { NodeApiError, type NodeEndpoint, StreamerClient } from './clients/index.js';
import { NodeDirectory } from './directory.js';
import { NodeHealthSource } from './health.js';
import { createNodeSchema, createStreamerSchema, updateNodeSchema, updateStreamerSchema } from './input.js';
import { NODE_KINDS } from './kinds.js';

/** Columns to read of a node (a Prisma `select`); see list(). */
export type NodeColumns = Partial<Record<keyof Node, true>>;

export type { Node };

const CURSOR_PREFIX = 'node';

export interface NodeServiceOptions {
  db: Db;
  events: EventBus;
  /** Told when a node is deleted or moved, so no check of the old one is announced or written. */
  health: Pick<HealthMonitor, 'forget' | 'checkNow'>;
  /** HTTP to node APIs (typed clients, health checks, the passthrough). */
  agent: Dispatcher;
  /** HEALTH_CHECK_TIMEOUT_MS: a scheduled check's and a ping's bound. */
  checkTimeoutMs: number;
  /** The outbound address policy: a node written as an IP it refuses is bad input. */
  policy: Pick<OutboundPolicy, 'checkLiteral'>;
}

export interface PingResult {
  node: Node;
  /** This ping's own outcome (the node's status after the thresholds is `node.status`). */
  status: HealthStatus;
  pingedAt: Date;
  latencyMs: number | null;
  error: string | null;
}

const UNCHECKED = {
  status: 'UNKNOWN',
  lastPingedAt: null,
  healthLatencyMs: null,
  healthDetail: null,
  healthySince: null,
} as const satisfies Partial<Node>;

/** The node registry: CRUD, ping, and calls to each node's own API. */
export class NodeService {
  /** Where each node's API is, for the passthrough's hot path. */
  readonly directory: NodeDirectory;
  /** Every node as a health subject (registered with the monitor by the module). */
  readonly healthSource: NodeHealthSource;
  readonly agent: Dispatcher;
  private readonly db: Db;

  constructor(private readonly options: NodeServiceOptions) {
    this.db = options.db;
    this.agent = options.agent;
    this.directory = new NodeDirectory(options.db);
    this.healthSource = new NodeHealthSource(options.db, options.agent, options.checkTimeoutMs);
  }

  /**
   * A page of nodes of one kind. `select` (GraphQL: only what the query reads) returns rows with
   * those columns only, typed as whole ones: only for callers that read no others.
   */
  async list(kind: NodeKind, args: PageArgs, select?: NodeColumns) {
    const query = pageQuery(CURSOR_PREFIX, args, isUuid);
    const rows = (await this.db.node.findMany({
      ...(select ? { select: { ...select, id: true } } : {}),
      where: { kind, ...(query.afterKey ? { id: { gt: query.afterKey } } : {}) },
      orderBy: { id: 'asc' },
      take: query.take,
    })) as Node[];
    return toPage(CURSOR_PREFIX, rows, query, (n) => n.id);
  }

  /** A node by id (of one kind, when given); null for unknown or malformed ids. `select` as in list(). */
  async find(id: string, kind?: NodeKind, select?: NodeColumns): Promise<Node | null> {
    if (!isUuid(id)) return null;
    const node = (await this.db.node.findUnique({
      ...(select ? { select: { ...select, kind: true } } : {}),
      where: { id },
    })) as Node | null;
    return node && (kind === undefined || node.kind === kind) ? node : null;
  }

  async create(kind: NodeKind, input: unknown, actor: Actor): Promise<Node> {
    const schema: z.ZodType<{ name: string; host: string; apiPort: number; httpPort?: number }> =
      kind === 'STREAMER' ? createStreamerSchema : createNodeSchema;
    const data = parseInput(schema, input, 'input');
    this.assertReachable(data.host, data.apiPort);
    const node = await withConflictAsError(kind, data.name, () => this.db.node.create({ data: { ...data, kind } }));
    this.directory.forget(node.id);
    // Awaited: once the mutation answers, its audit entry is in the log.
    await this.options.events.record(
      {
        type: 'node.created',
        alwaysStored: true,
        source: 'nodes',
        severity: 'INFO',
        message: `${NODE_KINDS[kind].label} "${node.name}" created (${node.host}:${node.apiPort})`,
        details: { ...nodeRef(node), host: node.host, apiPort: node.apiPort },
      },
      actor,
    );
    return node;
  }

  async update(kind: NodeKind, id: string, input: unknown, actor: Actor): Promise<Node> {
    const schema: z.ZodType<{ name?: string; host?: string; apiPort?: number; httpPort?: number }> =
      kind === 'STREAMER' ? updateStreamerSchema : updateNodeSchema;
    const data = parseInput(schema, input, 'input');
    if (!isUuid(id)) throw notFound(NODE_KINDS[kind].label, id);
    // A node given a new address has no health yet: what was observed at the old one says nothing
    // about the new one. UNKNOWN until its next check decides (the monitor re-reads the stored state).
    const before = data.host !== undefined || data.apiPort !== undefined ? await this.find(id, kind) : null;
    const moved =
      before !== null &&
      (before.host !== (data.host ?? before.host) || before.apiPort !== (data.apiPort ?? before.apiPort));
    if (moved) this.assertReachable(data.host ?? before.host, data.apiPort ?? before.apiPort);
    const write = moved ? { ...data, ...UNCHECKED } : data;
    let node: Node;
    try {
      node = await withConflictAsError(kind, data.name, () =>
        this.db.node.update({ where: { id, kind }, data: write }),
      );
      if (moved) this.options.health.forget('NODE', id);
      this.directory.forget(id);
    } catch (error) {
      if (isRecordNotFound(error)) throw notFound(NODE_KINDS[kind].label, id);
      throw error;
    }
    // `changes`: the fields the input set, with the values they now have.
    await this.options.events.record(
      {
        type: 'node.updated',
        alwaysStored: true,
        source: 'nodes',
        severity: 'INFO',
        message: `${NODE_KINDS[kind].label} "${node.name}" updated: ${Object.keys(data).join(', ') || 'nothing'}`,
        details: { ...nodeRef(node), changes: { ...data } },
      },
      actor,
    );
    return node;
  }

  async delete(kind: NodeKind, id: string, actor: Actor): Promise<string> {
    if (!isUuid(id)) throw notFound(NODE_KINDS[kind].label, id);
    let node: Node;
    try {
      // One statement (DELETE … RETURNING): the audit entry names what was deleted.
      node = await this.db.node.delete({ where: { id, kind } });
    } catch (error) {
      if (isRecordNotFound(error)) throw notFound(NODE_KINDS[kind].label, id);
      throw error;
    } finally {
      this.directory.forget(id);
    }
    this.options.health.forget('NODE', id);
    await this.options.events.record(
      {
        type: 'node.deleted',
        alwaysStored: true,
        source: 'nodes',
        severity: 'INFO',
        message: `${NODE_KINDS[kind].label} "${node.name}" deleted`,
        details: nodeRef(node),
      },
      actor,
    );
    return id;
  }

  /** A host written as an IP the outbound policy refuses: BAD_USER_INPUT, before anything is written. */
  private assertReachable(host: string, apiPort: number): void {
    const refused = this.options.policy.checkLiteral(host, apiPort);
    if (refused) throw badInput(`host: refused by the outbound address policy: ${refused}`, 'input.host');
  }

  /**
   * Pings a node's `/api/ping` now, through the health monitor: the same timeout and anti-flap
   * thresholds as its scheduled checks, and the result stored at once. A dead node is a result
   * (UNHEALTHY with the reason), not an error. The answer is the row the check read, updated with
   * what was just stored; only a node deleted or moved while it was pinged is read again (deleted:
   * NOT_FOUND; moved: what its new address says).
   */
  async ping(id: string): Promise<PingResult> {
    const check = isUuid(id) ? await this.options.health.checkNow(this.healthSource, id) : null;
    const row = check?.subject.row;
    if (!check || !row) throw notFound('node', id);
    const { result, checkedAt, status, healthySince, stored } = check;
    const node = stored
      ? {
          ...row,
          status,
          lastPingedAt: checkedAt,
          healthLatencyMs: result.latencyMs,
          healthDetail: result.detail,
          healthySince,
        }
      : await this.find(id);
    if (!node) throw notFound('node', id);
    return {
      node,
      status: result.status,
      pingedAt: checkedAt,
      latencyMs: result.latencyMs,
      error: result.status === 'HEALTHY' ? null : result.detail,
    };
  }

  /** A streamer's id looked up, then a call to its own API (see callNode). */
  async withStreamer<T>(id: string, call: (client: StreamerClient) => Promise<T>, budget?: NodeCallBudget): Promise<T> {
    const node = await this.find(id, 'STREAMER');
    if (!node) throw notFound('streamer', id);
    return this.callNode(node, StreamerClient, call, budget);
  }

  /**
   * Runs a call against a node's own API, within the operation's budget when it has one (one call,
   * its answer's bytes); an unreachable or failing node is UPSTREAM_UNAVAILABLE.
   */
  async callNode<C, T>(
    node: Pick<Node, 'id' | 'kind' | 'host' | 'apiPort'>,
    Client: new (endpoint: NodeEndpoint, agent: Dispatcher, meter?: AnswerMeter) => C,
    call: (client: C) => Promise<T>,
    budget?: NodeCallBudget,
  ): Promise<T> {
    budget?.take();
    try {
      return await call(new Client(node, this.agent, budget));
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
}

const nodeRef = (node: Node) => ({ id: node.id, kind: node.kind, name: node.name });

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
    if (isUniqueViolation(error, 'Node', ['kind', 'name'])) {
      throw conflict(`a ${NODE_KINDS[kind].label} named "${name}" already exists`, 'input.name');
    }
    throw error;
  }
}
