import type { Dispatcher } from 'undici';
import type { Db } from '../../db/client.js';
import type { NodeKind } from '../../generated/prisma/enums.js';
import { clientFor } from '../nodes/clients/index.js';
import { isUuid } from '../nodes/validation.js';
import type { CheckResult, HealthRecord, HealthSource, HealthSubject, StoredHealth } from './types.js';

/** The columns a node's check needs. */
const NODE_COLUMNS = {
  id: true,
  kind: true,
  name: true,
  host: true,
  apiPort: true,
  status: true,
  healthySince: true,
} as const;

export interface NodeRef {
  id: string;
  kind: NodeKind;
  name: string;
  host: string;
  apiPort: number;
}

/** A node as a health subject: checked with its typed client's `GET /api/ping`. */
export class NodeSubject implements HealthSubject {
  readonly id: string;
  readonly name: string;
  readonly target: string;
  readonly stored: StoredHealth;

  constructor(
    readonly node: NodeRef,
    stored: StoredHealth,
    private readonly agent: Dispatcher,
    private readonly timeoutMs: number,
  ) {
    this.id = node.id;
    this.name = node.name;
    this.target = `${node.host}:${node.apiPort}`;
    this.stored = stored;
  }

  async check(signal: AbortSignal): Promise<CheckResult> {
    const outcome = await clientFor(this.node.kind, this.node, this.agent).ping(this.timeoutMs, signal);
    return {
      status: outcome.ok ? 'HEALTHY' : 'UNHEALTHY',
      latencyMs: outcome.latencyMs,
      detail: outcome.error ?? `HTTP ${outcome.statusCode}`,
    };
  }
}

/**
 * Rows read per query when listing. The embedded database runs a query on the event loop's
 * thread and resolves it without a macrotask in between, so pages are small and the listing
 * yields to the event loop after each one (5,000 nodes in one go blocked it for ~150 ms; a page of
 * 250 takes a few ms).
 */
const LIST_PAGE = 250;

/** Every node, checked at its `/api/ping`; results stored on the node's own columns. */
export class NodeHealthSource implements HealthSource<NodeSubject> {
  readonly kind = 'NODE' as const;

  constructor(
    private readonly db: Db,
    private readonly agent: Dispatcher,
    private readonly timeoutMs: number,
  ) {}

  async list(): Promise<NodeSubject[]> {
    const subjects: NodeSubject[] = [];
    let after: string | undefined;
    for (;;) {
      const rows = await this.db.node.findMany({
        select: NODE_COLUMNS,
        where: after ? { id: { gt: after } } : {},
        orderBy: { id: 'asc' },
        take: LIST_PAGE,
      });
      for (const row of rows) subjects.push(this.subject(row));
      if (rows.length < LIST_PAGE) return subjects;
      after = rows.at(-1)?.id;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async find(id: string): Promise<NodeSubject | null> {
    if (!isUuid(id)) return null;
    const row = await this.db.node.findUnique({ select: NODE_COLUMNS, where: { id } });
    return row ? this.subject(row) : null;
  }

  /**
   * One UPDATE for the whole batch, its rows passed as eight arrays (`unnest`): eight parameters
   * whatever the batch size, and about half the work of a VALUES list on the embedded database
   * (`n.id = ANY(ids)` lets the planner find the rows through the primary key instead of scanning
   * the table, again about twice as fast at thousands of nodes). A
   * row matches only while the node still exists and still has the address that was checked: a
   * node deleted meanwhile gets no write, and a node moved meanwhile keeps what its new address
   * says. `updatedAt` is left alone: it tracks configuration, not observations.
   */
  async persist(records: HealthRecord<NodeSubject>[]): Promise<void> {
    if (records.length === 0) return;
    const column = <T>(pick: (r: HealthRecord<NodeSubject>) => T): T[] => records.map(pick);
    const ids = column((r) => r.subject.node.id);
    const hosts = column((r) => r.subject.node.host);
    const ports = column((r) => r.subject.node.apiPort);
    const statuses = column((r) => r.status);
    const checkedAt = column((r) => r.checkedAt.toISOString());
    const latencies = column((r) => r.result.latencyMs);
    const details = column((r) => r.result.detail);
    const healthySince = column((r) => r.healthySince?.toISOString() ?? null);
    await this.db.$executeRaw`
      UPDATE "Node" AS n
      SET "status" = v.status::"HealthStatus", "lastPingedAt" = v.checked_at, "healthLatencyMs" = v.latency,
          "healthDetail" = v.detail, "healthySince" = v.healthy_since
      FROM unnest(${ids}::uuid[], ${hosts}::text[], ${ports}::int[], ${statuses}::text[],
                  ${checkedAt}::timestamptz[], ${latencies}::float8[], ${details}::text[], ${healthySince}::timestamptz[])
        AS v(id, host, api_port, status, checked_at, latency, detail, healthy_since)
      WHERE n.id = ANY(${ids}::uuid[]) AND n.id = v.id AND n.host = v.host AND n."apiPort" = v.api_port`;
  }

  private subject(row: NodeRef & StoredHealth): NodeSubject {
    const { status, healthySince, ...node } = row;
    return new NodeSubject(node, { status, healthySince }, this.agent, this.timeoutMs);
  }
}
