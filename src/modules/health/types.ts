import type { HealthStatus } from '../../generated/prisma/enums.js';
import type { HealthSubjectKind } from '../events/index.js';

export type { HealthStatus, HealthSubjectKind };

export const HEALTH_SUBJECT_KINDS = ['NODE', 'PROXY', 'ROUTE'] as const satisfies readonly HealthSubjectKind[];

/** One check's own outcome. An unhealthy subject is a result like this, never an exception. */
export interface CheckResult {
  status: 'HEALTHY' | 'UNHEALTHY';
  latencyMs: number | null;
  detail: string | null;
}

/** What is stored for a subject: the monitor seeds its state from it, so restarts stay quiet. */
export interface StoredHealth {
  status: HealthStatus;
  healthySince: Date | null;
}

/**
 * Anything the monitor checks. Sources build these from their own rows; the monitor knows nothing
 * else about them.
 */
export interface HealthSubject {
  readonly id: string;
  readonly name: string;
  /**
   * Where the subject is checked (an address). When it differs from the last listing, the
   * monitor forgets its counters and starts again from `stored`: a new address has no history.
   */
  readonly target?: string;
  /** Status as stored when the subject was listed. */
  readonly stored?: StoredHealth;
  /** One check. `signal` aborts it (timeout, shutdown); throwing is an UNHEALTHY result too. */
  check(signal: AbortSignal): Promise<CheckResult>;
}

/** A check's result after the thresholds: what the source stores for the subject. */
export interface HealthRecord<S extends HealthSubject = HealthSubject> {
  subject: S;
  result: CheckResult;
  checkedAt: Date;
  /** The thresholded status (not the check's own). */
  status: HealthStatus;
  /** When the subject last became HEALTHY; null while it is not. */
  healthySince: Date | null;
}

/**
 * A kind of subject (nodes now; proxies and routes later) registered with the monitor. Method
 * syntax on purpose: a `HealthSource<NodeSubject>` is then accepted where any source is.
 */
export interface HealthSource<S extends HealthSubject = HealthSubject> {
  readonly kind: HealthSubjectKind;
  /** The current subjects; called once per round, so added and removed ones are noticed. */
  list(): Promise<S[]>;
  /** One subject by id, for a manual check; null when there is none. */
  find(id: string): Promise<S | null>;
  /**
   * Stores the records, as few statements as possible (the monitor batches them). A record of a
   * subject that no longer exists, or no longer has the `target` it was checked at, is skipped.
   * Resolves to how many records were stored.
   */
  persist(records: HealthRecord<S>[]): Promise<number>;
}

/** A transition, as `healthChanged` streams it (contract type HealthChange). */
export interface HealthChange {
  subjectKind: HealthSubjectKind;
  subjectId: string;
  name: string;
  from: HealthStatus;
  to: HealthStatus;
  at: Date;
  latencyMs: number | null;
  detail: string | null;
}
