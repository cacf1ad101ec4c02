import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { StreamTraffic } from '../../modules/routes/index.js';

/** Prometheus metrics of one app instance (its own registry, so tests can run several apps). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'streamgate_' });
  const requests = new Counter({
    name: 'streamgate_http_requests_total',
    help: 'HTTP requests by surface, method and status',
    labelNames: ['surface', 'method', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'streamgate_http_request_duration_seconds',
    help: 'HTTP request duration by surface, until the response is finished',
    labelNames: ['surface'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const routeRequests = new Counter({
    name: 'streamgate_route_requests_total',
    help: 'Data plane requests by route (alias; empty when none matched) and status code',
    labelNames: ['route', 'code'] as const,
    registers: [registry],
  });
  const routeDuration = new Histogram({
    name: 'streamgate_route_request_duration_seconds',
    help: 'Data plane request duration by route, until the response is finished (upgrades: until the tunnel closes)',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  // The data plane's hot path: a labelled child per route (and code), looked up once.
  const routeCounters = new Map<string, Counter.Internal>();
  const routeHistograms = new Map<string, Histogram.Internal<'route'>>();
  return {
    registry,
    /** STREAM routes' traffic, read from their listeners when scraped (nothing counted per byte here). */
    trackStreams(traffic: () => Iterable<[string, StreamTraffic]>) {
      new Gauge({
        name: 'streamgate_stream_connections',
        help: 'STREAM route connections open now, by route',
        labelNames: ['route'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const [route, t] of traffic()) this.set({ route }, t.connections);
        },
      });
      new Counter({
        name: 'streamgate_stream_connections_total',
        help: 'STREAM route connections accepted, by route',
        labelNames: ['route'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const [route, t] of traffic()) this.inc({ route }, t.accepted);
        },
      });
      new Counter({
        name: 'streamgate_stream_bytes_total',
        help: 'STREAM route bytes by route and direction (in: from clients, out: to clients)',
        labelNames: ['route', 'direction'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const [route, t] of traffic()) {
            this.inc({ route, direction: 'in' }, t.bytesIn);
            this.inc({ route, direction: 'out' }, t.bytesOut);
          }
        },
      });
    },
    /** The response cache's lookups (README "Response cache"), read when scraped. */
    trackReadCache(stats: { readonly hits: number; readonly misses: number }) {
      new Counter({
        name: 'streamgate_response_cache_lookups_total',
        help: 'Read-only GraphQL operations looked up in the response cache, by result (hit: served without executing)',
        labelNames: ['result'] as const,
        registers: [registry],
        collect() {
          this.reset();
          this.inc({ result: 'hit' }, stats.hits);
          this.inc({ result: 'miss' }, stats.misses);
        },
      });
    },
    observeRoute(route: string, code: number, seconds: number) {
      const key = `${route} ${code}`;
      let counter = routeCounters.get(key);
      if (!counter) {
        counter = routeRequests.labels(route, String(code));
        routeCounters.set(key, counter);
      }
      counter.inc();
      let histogram = routeHistograms.get(route);
      if (!histogram) {
        histogram = routeDuration.labels(route);
        routeHistograms.set(route, histogram);
      }
      histogram.observe(seconds);
    },
    observe(surface: string, method: string, status: number, seconds: number) {
      requests.inc({ surface, method, status: String(status) });
      duration.observe({ surface }, seconds);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
