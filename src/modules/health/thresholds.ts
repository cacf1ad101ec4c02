import type { CheckResult, HealthStatus, StoredHealth } from './types.js';

/**
 * Anti-flap (Envoy's healthy/unhealthy thresholds, GoDoxy's monitor): one bad answer from a
 * healthy subject is noise; `failures` in a row are an outage, and `successes` in a row are a
 * recovery. A subject nobody has checked yet is UNKNOWN, and its first result decides at once:
 * waiting for three answers before calling a new subject anything would only delay the truth.
 */
export interface Thresholds {
  failures: number;
  successes: number;
}

export interface SubjectState {
  status: HealthStatus;
  healthySince: Date | null;
  /** Consecutive failed checks, and consecutive successful ones (one of the two is 0). */
  failures: number;
  successes: number;
}

/** Large enough for any threshold, small enough never to overflow. */
const COUNT_CAP = 1_000_000;

/**
 * State from what is stored: a subject stored HEALTHY counts as having met the success threshold
 * (and UNHEALTHY the failure one), so after a restart the same thresholds apply as before it.
 */
export function seedState(stored: StoredHealth | undefined, thresholds: Thresholds): SubjectState {
  switch (stored?.status) {
    case 'HEALTHY':
      return { status: 'HEALTHY', healthySince: stored.healthySince, failures: 0, successes: thresholds.successes };
    case 'UNHEALTHY':
      return { status: 'UNHEALTHY', healthySince: null, failures: thresholds.failures, successes: 0 };
    default:
      return { status: 'UNKNOWN', healthySince: null, failures: 0, successes: 0 };
  }
}

/** The state after one more result; `changed` when the status moved (a transition). */
export function advance(
  state: SubjectState,
  result: CheckResult,
  thresholds: Thresholds,
  at: Date,
): { state: SubjectState; changed: boolean } {
  const ok = result.status === 'HEALTHY';
  const failures = ok ? 0 : Math.min(state.failures + 1, COUNT_CAP);
  const successes = ok ? Math.min(state.successes + 1, COUNT_CAP) : 0;
  let status = state.status;
  if (status === 'UNKNOWN') status = result.status;
  else if (status === 'HEALTHY' && failures >= thresholds.failures) status = 'UNHEALTHY';
  else if (status === 'UNHEALTHY' && successes >= thresholds.successes) status = 'HEALTHY';
  const changed = status !== state.status;
  const healthySince = status !== 'HEALTHY' ? null : changed ? at : (state.healthySince ?? at);
  return { state: { status, healthySince, failures, successes }, changed };
}
