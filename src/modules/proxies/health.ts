import type { Dispatcher } from 'undici';
import type { Db } from '../../db/client.js';
import type { Proxy as ProxyRow } from '../../generated/prisma/client.js';
import {
  type CheckResult,
  type HealthInfoShape,
  type HealthRecord,
  type HealthSource,
  type HealthSubject,
  healthInfo,
  rowSubjects,
  type StoredHealth,
} from '../health/index.js';
import { httpProbe } from './validation/http-probe.js';
import { parseDestination } from './validation/syntax.js';

const PROXY_COLUMNS = { id: true, domain: true, destination: true, status: true, healthySince: true } as const;
type ListedRow = Pick<ProxyRow, keyof typeof PROXY_COLUMNS>;

/**
 * A proxy as a health subject: one `GET` of its destination, as the validation pipeline's HTTP
 * step does it (2xx–3xx healthy, redirects not followed), over the shared agent.
 */
export class ProxySubject implements HealthSubject {
  readonly id: string;
  readonly name: string;
  readonly target: string;
  readonly stored: StoredHealth;

  constructor(
    row: ListedRow,
    private readonly agent: Dispatcher,
    private readonly timeoutMs: number,
  ) {
    this.id = row.id;
    this.name = row.domain;
    this.target = row.destination;
    this.stored = { status: row.status, healthySince: row.healthySince };
  }

  async check(signal: AbortSignal): Promise<CheckResult> {
    const parsed = parseDestination(this.target);
    // Stored destinations passed SYNTAX when they were set; one that no longer parses is still a result.
    if (!parsed.ok) return { status: 'UNHEALTHY', latencyMs: null, detail: `destination: ${parsed.detail}` };
    const probe = await httpProbe(parsed.destination, { signal, timeoutMs: this.timeoutMs, dispatcher: this.agent });
    return { status: probe.ok ? 'HEALTHY' : 'UNHEALTHY', latencyMs: probe.latencyMs, detail: probe.detail };
  }
}

/** Every proxy, checked at its destination; results stored on the proxy's own columns. */
export class ProxyHealthSource implements HealthSource<ProxySubject> {
  readonly kind = 'PROXY' as const;

  constructor(
    private readonly db: Db,
    private readonly agent: Dispatcher,
    private readonly timeoutMs: number,
  ) {}

  list(): Promise<ProxySubject[]> {
    const page = (after: string | undefined, take: number) =>
      this.db.proxy.findMany({
        select: PROXY_COLUMNS,
        where: after ? { id: { gt: after } } : {},
        orderBy: { id: 'asc' },
        take,
      });
    return rowSubjects.list(page, (row) => new ProxySubject(row, this.agent, this.timeoutMs));
  }

  find(id: string): Promise<ProxySubject | null> {
    const one = (id: string) => this.db.proxy.findUnique({ select: PROXY_COLUMNS, where: { id } });
    return rowSubjects.find(id, one, (row) => new ProxySubject(row, this.agent, this.timeoutMs));
  }

  /**
   * One UPDATE for the batch (rows as arrays through `unnest`, as the nodes' source does). A row
   * matches only while the proxy exists and still has the destination that was checked.
   */
  async persist(records: HealthRecord<ProxySubject>[]): Promise<number> {
    if (records.length === 0) return 0;
    const {
      ids,
      targets: destinations,
      statuses,
      checkedAt,
      latencies,
      details,
      healthySince,
    } = rowSubjects.columns(records);
    return await this.db.$executeRaw`
      UPDATE "Proxy" AS p
      SET "status" = v.status::"HealthStatus", "lastCheckedAt" = v.checked_at, "healthLatencyMs" = v.latency,
          "healthDetail" = v.detail, "healthySince" = v.healthy_since
      FROM unnest(${ids}::uuid[], ${destinations}::text[], ${statuses}::text[], ${checkedAt}::timestamptz[],
                  ${latencies}::float8[], ${details}::text[], ${healthySince}::timestamptz[])
        AS v(id, destination, status, checked_at, latency, detail, healthy_since)
      WHERE p.id = ANY(${ids}::uuid[]) AND p.id = v.id AND p.destination = v.destination`;
  }
}

/** HealthInfo of a proxy from its stored columns. */
export function proxyHealth(proxy: ProxyRow): HealthInfoShape {
  return healthInfo({
    status: proxy.status,
    checkedAt: proxy.lastCheckedAt,
    latencyMs: proxy.healthLatencyMs,
    detail: proxy.healthDetail,
    healthySince: proxy.healthySince,
  });
}
