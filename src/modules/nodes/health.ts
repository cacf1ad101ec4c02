import type { Dispatcher } from 'undici';
import type { Db } from '../../db/client.js';
import type { Node } from '../../generated/prisma/client.js';
import type { NodeKind } from '../../generated/prisma/enums.js';
import {
  type CheckResult,
  type HealthRecord,
  type HealthSource,
  type HealthSubject,
  rowSubjects,
  type StoredHealth,
} from '../health/index.js';
import { clientFor } from './clients/index.js';

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
    /** The whole row, when the subject was read for a manual check (`ping` answers with it). */
    readonly row: Node | null = null,
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

/** Every node, checked at its `/api/ping`; results stored on the node's own columns. */
export class NodeHealthSource implements HealthSource<NodeSubject> {
  readonly kind = 'NODE' as const;

  constructor(
    private readonly db: Db,
    private readonly agent: Dispatcher,
    private readonly timeoutMs: number,
  ) {}

  list(): Promise<NodeSubject[]> {
    const page = (after: string | undefined, take: number) =>
      this.db.node.findMany({
        select: NODE_COLUMNS,
        where: after ? { id: { gt: after } } : {},
        orderBy: { id: 'asc' },
        take,
      });
    return rowSubjects.list(page, (row) => this.subject(row));
  }

  /** A manual check reads the whole row: `ping` answers with it, updated by the check, without reading it again. */
  find(id: string): Promise<NodeSubject | null> {
    const one = (id: string) => this.db.node.findUnique({ where: { id } });
    return rowSubjects.find(id, one, (row) => this.subject(row, row));
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
  async persist(records: HealthRecord<NodeSubject>[]): Promise<number> {
    if (records.length === 0) return 0;
    const { ids, statuses, checkedAt, latencies, details, healthySince } = rowSubjects.columns(records);
    const hosts = records.map((r) => r.subject.node.host);
    const ports = records.map((r) => r.subject.node.apiPort);
    return await this.db.$executeRaw`
      UPDATE "Node" AS n
      SET "status" = v.status::"HealthStatus", "lastPingedAt" = v.checked_at, "healthLatencyMs" = v.latency,
          "healthDetail" = v.detail, "healthySince" = v.healthy_since
      FROM unnest(${ids}::uuid[], ${hosts}::text[], ${ports}::int[], ${statuses}::text[],
                  ${checkedAt}::timestamptz[], ${latencies}::float8[], ${details}::text[], ${healthySince}::timestamptz[])
        AS v(id, host, api_port, status, checked_at, latency, detail, healthy_since)
      WHERE n.id = ANY(${ids}::uuid[]) AND n.id = v.id AND n.host = v.host AND n."apiPort" = v.api_port`;
  }

  private subject(row: NodeRef & StoredHealth, whole: Node | null = null): NodeSubject {
    const { id, kind, name, host, apiPort, status, healthySince } = row;
    return new NodeSubject(
      { id, kind, name, host, apiPort },
      { status, healthySince },
      this.agent,
      this.timeoutMs,
      whole,
    );
  }
}
