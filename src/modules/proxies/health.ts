import type { Dispatcher } from 'undici';
import type { Db } from '../../db/client.js';
import type { Proxy as ProxyRow } from '../../generated/prisma/client.js';
import { type HealthInfoShape, healthInfo } from '../health/info.js';
import type { CheckResult, HealthRecord, HealthSource, HealthSubject, StoredHealth } from '../health/types.js';
import { isUuid } from '../nodes/validation.js';
import { httpProbe } from './validation/http-probe.js';
import { parseDestination } from './validation/syntax.js';

const PROXY_COLUMNS = { id: true, domain: true, destination: true, status: true, healthySince: true } as const;
type ListedRow = Pick<ProxyRow, keyof typeof PROXY_COLUMNS>;

/** Rows per listing query: small pages keep the embedded database from holding the event loop. */
const LIST_PAGE = 250;

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

  async list(): Promise<ProxySubject[]> {
    const subjects: ProxySubject[] = [];
    let after: string | undefined;
    for (;;) {
      const rows = await this.db.proxy.findMany({
        select: PROXY_COLUMNS,
        where: after ? { id: { gt: after } } : {},
        orderBy: { id: 'asc' },
        take: LIST_PAGE,
      });
      for (const row of rows) subjects.push(new ProxySubject(row, this.agent, this.timeoutMs));
      if (rows.length < LIST_PAGE) return subjects;
      after = rows.at(-1)?.id;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async find(id: string): Promise<ProxySubject | null> {
    if (!isUuid(id)) return null;
    const row = await this.db.proxy.findUnique({ select: PROXY_COLUMNS, where: { id } });
    return row ? new ProxySubject(row, this.agent, this.timeoutMs) : null;
  }

  /**
   * One UPDATE for the batch (rows as arrays through `unnest`, as the nodes' source does). A row
   * matches only while the proxy exists and still has the destination that was checked.
   */
  async persist(records: HealthRecord<ProxySubject>[]): Promise<void> {
    if (records.length === 0) return;
    const column = <T>(pick: (r: HealthRecord<ProxySubject>) => T): T[] => records.map(pick);
    const ids = column((r) => r.subject.id);
    const destinations = column((r) => r.subject.target);
    const statuses = column((r) => r.status);
    const checkedAt = column((r) => r.checkedAt.toISOString());
    const latencies = column((r) => r.result.latencyMs);
    const details = column((r) => r.result.detail);
    const healthySince = column((r) => r.healthySince?.toISOString() ?? null);
    await this.db.$executeRaw`
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
