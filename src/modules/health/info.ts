import type { HealthStatus } from './types.js';

/** HealthInfo as the GraphQL type shows it, for every kind of subject. */
export interface HealthInfoShape {
  status: HealthStatus;
  checkedAt: Date | null;
  latencyMs: number | null;
  /** Seconds since the last transition to HEALTHY; null while not healthy. */
  uptimeSeconds: number | null;
  detail: string | null;
}

/** HealthInfo from stored columns; uptime is counted from `healthySince` to `now`. */
export function healthInfo(
  stored: {
    status: HealthStatus;
    checkedAt: Date | null;
    latencyMs: number | null;
    detail: string | null;
    healthySince: Date | null;
  },
  now = Date.now(),
): HealthInfoShape {
  const { status, checkedAt, latencyMs, detail, healthySince } = stored;
  const uptimeSeconds =
    status === 'HEALTHY' && healthySince ? Math.max(0, (now - healthySince.getTime()) / 1000) : null;
  return { status, checkedAt, latencyMs, uptimeSeconds, detail };
}
