import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

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
  return {
    registry,
    observe(surface: string, method: string, status: number, seconds: number) {
      requests.inc({ surface, method, status: String(status) });
      duration.observe({ surface }, seconds);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
