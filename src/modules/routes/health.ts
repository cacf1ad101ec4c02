import type { Dispatcher } from 'undici';
import type { OutboundPolicy } from '../../lib/outbound.js';
import type {
  CheckResult,
  HealthRecord,
  HealthSource,
  HealthStatus,
  HealthSubject,
  StoredHealth,
} from '../health/index.js';
import { type HealthInfoShape, healthInfo } from '../health/index.js';
import { connectStep, httpProbe } from '../proxies/index.js';
import type { RouteRegistry } from './registry.js';
import type { ActiveRoute, Route } from './types.js';

/**
 * An active route as a health subject: `GET` of its health URL for HTTP routes (2xx–3xx healthy,
 * redirects not followed, as proxies are checked), a TCP connect to the upstream for STREAM routes.
 * Its id is the alias; its target the upstream, so a route given a new upstream starts over.
 */
export class RouteSubject implements HealthSubject {
  readonly id: string;
  readonly name: string;
  readonly target: string;

  constructor(
    readonly route: ActiveRoute,
    readonly stored: StoredHealth | undefined,
    private readonly agent: Dispatcher,
    private readonly timeoutMs: number,
    private readonly policy?: Pick<OutboundPolicy, 'checkLiteral' | 'lookup'>,
  ) {
    this.id = route.alias;
    this.name = route.alias;
    this.target = targetOf(route);
  }

  async check(signal: AbortSignal): Promise<CheckResult> {
    const { route } = this;
    if (route.kind === 'STREAM') {
      const started = performance.now();
      const { host, port } = route.upstream;
      const outcome = await connectStep([host], port, this.timeoutMs, signal, this.policy);
      const latencyMs = Math.round((performance.now() - started) * 100) / 100;
      return { status: outcome.ok ? 'HEALTHY' : 'UNHEALTHY', latencyMs, detail: outcome.detail };
    }
    const { protocol, host, port } = route.upstream;
    const destination = { url: route.healthUrl, scheme: protocol, host, port, isIp: false };
    const probe = await httpProbe(destination, { signal, timeoutMs: this.timeoutMs, dispatcher: this.agent });
    return { status: probe.ok ? 'HEALTHY' : 'UNHEALTHY', latencyMs: probe.latencyMs, detail: probe.detail };
  }
}

function targetOf(route: ActiveRoute): string {
  return route.kind === 'HTTP' ? route.healthUrl : (route.upstreamUrl ?? '');
}

interface Observed {
  target: string;
  status: HealthStatus;
  checkedAt: Date;
  latencyMs: number | null;
  detail: string | null;
  healthySince: Date | null;
}

const UNKNOWN: HealthInfoShape = {
  status: 'UNKNOWN',
  checkedAt: null,
  latencyMs: null,
  uptimeSeconds: null,
  detail: null,
};

/**
 * The routes only the registry knows (file routes), for the health monitor (kind ROUTE). A route
 * made from a proxy or a node is not probed again: it reports that subject's health (schema.ts).
 * Routes live in memory, so their health does too: `persist` keeps the latest record per route
 * here, where `Route.health` reads it in O(1).
 */
export class RouteHealthSource implements HealthSource<RouteSubject> {
  readonly kind = 'ROUTE' as const;
  private readonly observed = new Map<string, Observed>();

  constructor(
    private readonly registry: RouteRegistry,
    private readonly agent: Dispatcher,
    private readonly timeoutMs: number,
    private readonly policy?: Pick<OutboundPolicy, 'checkLiteral' | 'lookup'>,
  ) {}

  async list(): Promise<RouteSubject[]> {
    const subjects: RouteSubject[] = [];
    const active = new Set<string>();
    for (const route of this.registry.iterActive()) {
      if (route.ref) continue;
      active.add(route.alias);
      subjects.push(this.subjectOf(route));
    }
    // Routes that are gone take their health with them.
    for (const alias of this.observed.keys()) if (!active.has(alias)) this.observed.delete(alias);
    return subjects;
  }

  async find(alias: string): Promise<RouteSubject | null> {
    const route = this.registry.get(alias);
    return route && !route.ref ? this.subjectOf(route) : null;
  }

  async persist(records: HealthRecord<RouteSubject>[]): Promise<number> {
    let stored = 0;
    for (const { subject, status, checkedAt, result, healthySince } of records) {
      // A route removed, or given a new upstream, while it was checked: the result is of the old one.
      const current = this.registry.get(subject.id);
      if (!current || targetOf(current) !== subject.target) continue;
      this.observed.set(subject.id, {
        target: subject.target,
        status,
        checkedAt,
        latencyMs: result.latencyMs,
        detail: result.detail,
        healthySince,
      });
      stored++;
    }
    return stored;
  }

  /** A file route's health now; UNKNOWN until its first check (and for excluded routes). */
  info(route: Route, now = Date.now()): HealthInfoShape {
    const observed = this.observedFor(route);
    return observed ? healthInfo({ ...observed }, now) : UNKNOWN;
  }

  private observedFor(route: Route): Observed | undefined {
    if (route.kind === 'EXCLUDED') return undefined;
    const observed = this.observed.get(route.alias);
    return observed && observed.target === targetOf(route) ? observed : undefined;
  }

  private subjectOf(route: ActiveRoute): RouteSubject {
    const observed = this.observedFor(route);
    const stored = observed && { status: observed.status, healthySince: observed.healthySince };
    return new RouteSubject(route, stored, this.agent, this.timeoutMs, this.policy);
  }
}
