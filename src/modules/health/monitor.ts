import type { Db } from '../../db/client.js';
import type { Env } from '../../env.js';
import { describeError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { EventBus } from '../events/index.js';
import type { Settings, SettingsService } from '../settings/index.js';
import { BatchWriter } from './batch-writer.js';
import { type CheckMessage, checkChannel } from './diagnostics.js';
import { ChangeHub, type HealthStreamItem } from './hub.js';
import { Schedule, Semaphore } from './scheduler.js';
import { advance, type SubjectState, seedState, type Thresholds } from './thresholds.js';
import type {
  CheckResult,
  HealthChange,
  HealthRecord,
  HealthSource,
  HealthStatus,
  HealthSubject,
  HealthSubjectKind,
} from './types.js';

export interface HealthMonitorOptions {
  env: Env;
  db: Db;
  log: Logger;
  events: EventBus;
  settings: SettingsService;
  /** Test knobs; production uses the defaults. */
  timing?: {
    /** Milliseconds per second of `healthCheckIntervalSeconds` (default 1000; tests shrink it). */
    secondMs?: number;
    /** How often pending results are written (default 1000 ms). */
    flushMs?: number;
    /** Randomness of placement and jitter (default Math.random). */
    random?: () => number;
    /** Changes queued per subscriber before it is ended as too slow (default 1000). */
    subscriberQueue?: number;
  };
}

interface Entry {
  key: string;
  source: HealthSource;
  subject: HealthSubject;
  state: SubjectState;
  /** A scheduled check is queued or running: the next due time is skipped rather than stacked. */
  busy: boolean;
}

/** What a manual check returns: the check's own outcome, and the state after the thresholds. */
export interface ManualCheck<S extends HealthSubject = HealthSubject> extends HealthRecord<S> {
  /** False when the subject was deleted, or given a new target, while it was checked: nothing was written. */
  stored: boolean;
}

/**
 * Rows per write statement. Larger batches cost less per row, but on the embedded database a
 * statement runs on the event loop's thread: 500 rows keep one write to a few tens of ms.
 */
const MAX_BATCH = 500;
/** A subject's detail is text from somewhere else: keep what is stored bounded. */
const MAX_DETAIL = 500;

class StoppedError extends Error {
  override name = 'StoppedError';
}

/**
 * Checks every registered subject (nodes; proxies and routes once their sources register) on a
 * schedule: each one every `healthCheckIntervalSeconds` ±10%, spread over the interval, at most
 * HEALTH_CHECK_CONCURRENCY at once, each bounded by HEALTH_CHECK_TIMEOUT_MS. Results pass the
 * anti-flap thresholds (thresholds.ts); only transitions are announced (event log and
 * `healthChanged`), and results are stored in batches (batch-writer.ts).
 */
export class HealthMonitor {
  private readonly sources = new Map<HealthSubjectKind, HealthSource>();
  private readonly entries = new Map<string, Entry>();
  private readonly schedule: Schedule;
  private readonly slots: Semaphore;
  private readonly writer: BatchWriter;
  private readonly hub: ChangeHub;
  private readonly secondMs: number;
  /** Every check, listing and manual check under way: stop() waits for all of them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly controllers = new Set<AbortController>();
  /** Those of scheduled checks: aborted when this instance stops leading. */
  private readonly scheduledControllers = new Set<AbortController>();
  /** Runs the scheduled checks: always with one process; with several, only the leader (lead()). */
  private leading = true;
  /** Several instances: hands each transition to the others (src/cluster). */
  private forward: ((change: HealthChange) => void) | null = null;
  private thresholds: Thresholds = { failures: 3, successes: 2 };
  private started = false;
  /** Set first thing in stop(): nothing new starts after it. */
  private halted = false;
  private stopping: Promise<void> | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private unsubscribeSettings: (() => void) | undefined;
  private readonly counters = { checks: 0, skipped: 0, maxInFlight: 0, maxDriftMs: 0, transitions: 0 };

  constructor(readonly options: HealthMonitorOptions) {
    const { env, log, timing = {} } = options;
    this.secondMs = timing.secondMs ?? 1000;
    this.schedule = new Schedule(30 * this.secondMs, (key, due) => this.onDue(key, due), timing.random);
    this.slots = new Semaphore(env.HEALTH_CHECK_CONCURRENCY);
    this.hub = new ChangeHub(timing.subscriberQueue ?? 1000);
    this.writer = new BatchWriter({
      log,
      flushMs: timing.flushMs ?? 1000,
      maxBatch: MAX_BATCH,
      onOutage: (error, pending) =>
        options.events.emit({
          type: 'health.write_failed',
          source: 'health',
          severity: 'ERROR',
          message: `health results cannot be stored (${pending} pending); retrying`,
          details: { pending, error: error instanceof Error ? error.message : String(error) },
        }),
    });
  }

  /** Adds a kind of subject; its subjects are picked up at the next round. One source per kind. */
  register(source: HealthSource): void {
    if (this.sources.has(source.kind)) throw new Error(`a health source for ${source.kind} is already registered`);
    this.sources.set(source.kind, source);
    if (this.started && !this.halted && this.options.env.HEALTH_MONITOR === 'on') this.track(this.refresh());
  }

  /** The registered source of a kind of subject (for a manual check of one subject). */
  sourceOf(kind: HealthSubjectKind): HealthSource | undefined {
    return this.sources.get(kind);
  }

  /**
   * Drops a subject at once (deleted, or given a new address) instead of at the next listing: a
   * check of it still running produces no result, no transition and no write. A subject that
   * still exists comes back with the next listing, seeded from what is stored for it.
   */
  forget(kind: HealthSubjectKind, id: string): void {
    const key = keyOf(kind, id);
    this.entries.delete(key);
    this.schedule.remove(key);
  }

  /**
   * Lists one kind's subjects again now instead of at the next round: a source whose subjects
   * live in memory (routes) says so when they change, so new ones are scheduled at once.
   */
  relistSoon(kind: HealthSubjectKind): void {
    const source = this.sources.get(kind);
    if (!source || !this.started || this.halted || this.options.env.HEALTH_MONITOR === 'off') return;
    this.track(this.relist(source));
  }

  /**
   * Several instances share the subjects (src/cluster): only the leader checks them on schedule
   * and its transitions reach every instance through `forward` and deliverRemote(); the others
   * list the subjects each round and hold what is stored for them (statusOf). Until lead(true),
   * this instance follows.
   */
  share(forward: (change: HealthChange) => void): void {
    this.forward = forward;
    this.leading = false;
    this.schedule.stop();
  }

  /**
   * This instance gained or lost the lead. Gaining it: the subjects are listed again and their
   * states taken from what the last leader stored (so a transition it announced is not announced
   * twice), then the schedule runs. Losing it: the schedule stops and running scheduled checks
   * are abandoned without a result (the new leader checks again).
   */
  lead(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    if (!this.started || this.halted || this.options.env.HEALTH_MONITOR === 'off') return;
    if (!leading) {
      this.schedule.stop();
      for (const controller of this.scheduledControllers) controller.abort(new StoppedError('leadership lost'));
      return;
    }
    this.track(
      this.refresh().then(() => {
        for (const entry of this.entries.values()) entry.state = seedState(entry.subject.stored, this.thresholds);
        if (this.leading && !this.halted) this.schedule.start();
      }),
    );
  }

  /** A transition the leader announced (another instance): to this instance's subscribers. */
  deliverRemote(change: HealthChange): void {
    if (this.halted) return;
    const at = new Date(change.at);
    const entry = this.entries.get(keyOf(change.subjectKind, change.subjectId));
    // Also on the leader: a manual check (ping) on another instance is a transition too.
    if (entry) {
      entry.state = seedState(
        { status: change.to, healthySince: change.to === 'HEALTHY' ? at : null },
        this.thresholds,
      );
    }
    this.hub.publish({ ...change, at });
  }

  /** Starts scheduled checks (unless HEALTH_MONITOR=off). */
  start(): void {
    if (this.started || this.halted) return;
    this.started = true;
    if (this.options.env.HEALTH_MONITOR === 'off') {
      this.options.log.info('health monitor off (HEALTH_MONITOR=off): no scheduled checks');
      return;
    }
    this.writer.start();
    this.unsubscribeSettings = this.options.settings.onChange((settings) => this.applySettings(settings));
    if (this.leading) this.schedule.start();
    this.track(this.refresh());
  }

  /**
   * Stops scheduling, aborts running checks and waits for them, writes what is pending, ends
   * the subscriptions. Nothing is written after it resolves. Call before the database closes.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.halted = true;
      this.schedule.stop();
      clearTimeout(this.refreshTimer);
      this.unsubscribeSettings?.();
      this.slots.cancel();
      for (const controller of this.controllers) controller.abort(new StoppedError('the health monitor is stopping'));
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await this.writer.close();
      this.hub.close();
    })();
    return this.stopping;
  }

  /**
   * A subject's status as the monitor holds it now (after the thresholds), in O(1) and without
   * I/O: for the data plane, on every request. Undefined while the monitor does not track it
   * (monitor off, not listed yet, or forgotten after a change).
   */
  statusOf(kind: HealthSubjectKind, id: string): HealthStatus | undefined {
    return this.entries.get(keyOf(kind, id))?.state.status;
  }

  /** How long one round of checks takes: when a subject's status is next looked at, at the latest. */
  get intervalMs(): number {
    return this.schedule.interval;
  }

  /** Live transitions of the given kinds (all when null or empty). */
  subscribe(kinds?: readonly HealthSubjectKind[] | null): AsyncIterableIterator<HealthStreamItem> {
    return this.hub.subscribe(kinds);
  }

  /**
   * Checks one subject now, through the same thresholds as the schedule, and stores the result
   * at once. Null when the source has no such subject.
   */
  async checkNow<S extends HealthSubject>(source: HealthSource<S>, id: string): Promise<ManualCheck<S> | null> {
    if (this.halted) throw new StoppedError('the health monitor has stopped');
    return this.track(this.manualCheck(source, id));
  }

  /**
   * Checks every subject once now and writes the results (the schedule's work, done at once and
   * awaited; a subject whose scheduled check is under way is not checked twice). For tests and
   * tools; the schedule does not need it.
   */
  async checkAll(): Promise<void> {
    if (this.halted) throw new StoppedError('the health monitor has stopped');
    await this.track(
      (async () => {
        await this.refresh();
        await Promise.all([...this.entries.values()].map((entry) => this.scheduledCheck(entry, performance.now())));
      })(),
    );
    await this.writer.flush();
  }

  /** Counters for tests and the benchmark. */
  stats() {
    return {
      ...this.counters,
      subjects: this.entries.size,
      scheduled: this.schedule.size,
      intervalMs: this.schedule.interval,
      inFlight: this.slots.inUse,
      pendingWrites: this.writer.pendingCount,
      writes: { ...this.writer.stats },
      subscribers: this.hub.size,
    };
  }

  // ----------------------------------------------------------------------------- rounds

  /**
   * One round's bookkeeping: settings re-read, every source listed again (new subjects are
   * scheduled, removed ones forgotten), and the next round planned one interval later.
   */
  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        await this.loadSettings();
        for (const source of this.sources.values()) {
          if (this.halted) return;
          await this.relist(source);
        }
      } finally {
        this.refreshing = undefined;
        this.planRefresh();
      }
    })();
    return this.refreshing;
  }

  private planRefresh(): void {
    clearTimeout(this.refreshTimer);
    if (!this.started || this.halted || this.options.env.HEALTH_MONITOR === 'off') return;
    this.refreshTimer = setTimeout(() => this.track(this.refresh()), this.schedule.interval);
    this.refreshTimer.unref();
  }

  private async loadSettings(): Promise<void> {
    try {
      this.applySettings(await this.options.settings.get());
    } catch (error) {
      // The last known settings stay in force; the next round tries again.
      this.options.log.warn({ err: error }, 'health monitor: reading settings failed');
    }
  }

  private applySettings(settings: Settings): void {
    this.thresholds = { failures: settings.healthFailureThreshold, successes: settings.healthSuccessThreshold };
    const intervalMs = settings.healthCheckIntervalSeconds * this.secondMs;
    if (intervalMs !== this.schedule.interval) {
      this.schedule.retime(intervalMs);
      if (!this.refreshing) this.planRefresh();
    }
  }

  private async relist(source: HealthSource): Promise<void> {
    let subjects: HealthSubject[];
    try {
      subjects = await source.list();
    } catch (error) {
      // Keep checking what we know; the next round lists again.
      this.options.log.warn({ err: error, kind: source.kind }, 'health monitor: listing subjects failed');
      return;
    }
    const seen = new Set<string>();
    for (const subject of subjects) {
      const key = keyOf(source.kind, subject.id);
      seen.add(key);
      this.entryFor(source, subject);
      if (this.started && this.options.env.HEALTH_MONITOR === 'on') this.schedule.add(key);
    }
    for (const [key, entry] of this.entries) {
      if (entry.source === source && !seen.has(key)) {
        this.entries.delete(key);
        this.schedule.remove(key);
      }
    }
  }

  /** The entry of a subject, created or updated from a fresh listing. */
  private entryFor(source: HealthSource, subject: HealthSubject): Entry {
    const key = keyOf(source.kind, subject.id);
    const entry = this.entries.get(key);
    if (!entry) {
      const created = { key, source, subject, state: seedState(subject.stored, this.thresholds), busy: false };
      this.entries.set(key, created);
      return created;
    }
    // A new address has no history here: start again from what is stored for it. A follower holds
    // what the leader stored.
    if (entry.subject.target !== subject.target || !this.leading)
      entry.state = seedState(subject.stored, this.thresholds);
    entry.subject = subject;
    return entry;
  }

  // ----------------------------------------------------------------------------- checks

  private onDue(key: string, dueAt: number): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    if (entry.busy) {
      this.counters.skipped++;
      return;
    }
    this.track(this.scheduledCheck(entry, dueAt));
  }

  private async scheduledCheck(entry: Entry, dueAt: number): Promise<void> {
    if (entry.busy) return;
    entry.busy = true;
    try {
      if (!(await this.slots.acquire())) return;
      try {
        if (this.halted) return;
        const startedAt = performance.now();
        const driftMs = startedAt - dueAt;
        this.counters.checks++;
        this.counters.maxInFlight = Math.max(this.counters.maxInFlight, this.slots.inUse);
        this.counters.maxDriftMs = Math.max(this.counters.maxDriftMs, driftMs);
        const subject = entry.subject;
        const outcome = await this.runCheck(subject, this.scheduledControllers);
        if (!outcome || this.halted || !this.leading) return;
        if (checkChannel.hasSubscribers) {
          checkChannel.publish({
            kind: entry.source.kind,
            id: subject.id,
            driftMs,
            durationMs: performance.now() - startedAt,
            status: outcome.result.status,
          } satisfies CheckMessage);
        }
        // Forgotten meanwhile (deleted), or moved: this result is about something that is gone.
        if (this.entries.get(entry.key) !== entry || entry.subject.target !== subject.target) return;
        this.writer.add(entry.source, this.apply(entry, subject, outcome.result, outcome.checkedAt));
      } finally {
        this.slots.release();
      }
    } finally {
      entry.busy = false;
    }
  }

  private async manualCheck<S extends HealthSubject>(
    source: HealthSource<S>,
    id: string,
  ): Promise<ManualCheck<S> | null> {
    const subject = await source.find(id);
    const key = keyOf(source.kind, id);
    if (!subject) {
      this.entries.delete(key);
      this.schedule.remove(key);
      return null;
    }
    // Scheduled or not (HEALTH_MONITOR=off), a manual check uses the settings in force now.
    await this.loadSettings();
    const entry = this.entryFor(source, subject);
    const outcome = await this.runCheck(subject);
    if (!outcome) throw new StoppedError('the health monitor is stopping');
    const record = this.apply(entry, subject, outcome.result, outcome.checkedAt);
    const stored = await this.writer.writeNow(source, record);
    return { ...record, stored: stored > 0 };
  }

  /**
   * Runs one check with the timeout. A check that throws, or does not settle in time, is an
   * UNHEALTHY result whose detail says why; null when the monitor stopped it.
   */
  private async runCheck(
    subject: HealthSubject,
    scheduled?: Set<AbortController>,
  ): Promise<{ result: CheckResult; checkedAt: Date } | null> {
    if (this.halted) return null;
    const timeoutMs = this.options.env.HEALTH_CHECK_TIMEOUT_MS;
    const controller = new AbortController();
    this.controllers.add(controller);
    scheduled?.add(controller);
    const timer = setTimeout(
      () => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
      timeoutMs,
    );
    const abandoned = rejectOnAbort(controller.signal);
    const started = performance.now();
    let result: CheckResult;
    try {
      // The race also bounds a check that ignores its signal.
      result = validResult(await Promise.race([subject.check(controller.signal), abandoned.promise]));
    } catch (error) {
      if (error instanceof StoppedError) return null;
      const latencyMs = Math.round((performance.now() - started) * 100) / 100;
      result = { status: 'UNHEALTHY', latencyMs, detail: describeError(error) };
    } finally {
      clearTimeout(timer);
      abandoned.dispose();
      this.controllers.delete(controller);
      scheduled?.delete(controller);
    }
    if (controller.signal.reason instanceof StoppedError) return null;
    return { result: { ...result, detail: truncate(result.detail) }, checkedAt: new Date() };
  }

  /** A result through the thresholds; announces a transition. */
  private apply<S extends HealthSubject>(
    entry: Entry,
    subject: S,
    result: CheckResult,
    checkedAt: Date,
  ): HealthRecord<S> {
    const from = entry.state.status;
    const { state, changed } = advance(entry.state, result, this.thresholds, checkedAt);
    entry.state = state;
    const record = { subject, result, checkedAt, status: state.status, healthySince: state.healthySince };
    if (changed) this.announce(entry.source.kind, subject, from, record);
    return record;
  }

  private announce(kind: HealthSubjectKind, subject: HealthSubject, from: HealthStatus, record: HealthRecord): void {
    this.counters.transitions++;
    const { status: to, result, checkedAt } = record;
    const change: HealthChange = {
      subjectKind: kind,
      subjectId: subject.id,
      name: subject.name,
      from,
      to,
      at: checkedAt,
      latencyMs: result.latencyMs,
      detail: result.detail,
    };
    const { at: _at, ...details } = change;
    this.options.events.emit({
      type: 'health.changed',
      alwaysStored: true,
      source: 'health',
      severity: to === 'HEALTHY' ? 'INFO' : 'WARN',
      message: `${kind.toLowerCase()} "${subject.name}" is ${to} (was ${from})${result.detail ? `: ${result.detail}` : ''}`,
      details,
    });
    this.hub.publish(change);
    this.forward?.(change);
  }

  /** Keeps a promise in the set stop() waits for, until it settles. */
  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const untrack = () => this.inFlight.delete(promise);
    promise.then(untrack, untrack);
    return promise;
  }
}

function keyOf(kind: HealthSubjectKind, id: string): string {
  return `${kind}:${id}`;
}

/** A promise that rejects with the signal's reason once it aborts; dispose() when done. */
function rejectOnAbort(signal: AbortSignal): { promise: Promise<never>; dispose(): void } {
  let onAbort = () => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => {}); // only ever observed through the race
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/** A subject's result as the monitor can trust it (sources are not ours to trust). */
function validResult(result: CheckResult): CheckResult {
  if (result?.status !== 'HEALTHY' && result?.status !== 'UNHEALTHY') {
    return { status: 'UNHEALTHY', latencyMs: null, detail: `invalid check result: ${JSON.stringify(result)}` };
  }
  const latencyMs = Number.isFinite(result.latencyMs) ? result.latencyMs : null;
  return { status: result.status, latencyMs, detail: typeof result.detail === 'string' ? result.detail : null };
}

function truncate(detail: string | null): string | null {
  return detail && detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL - 1)}…` : detail;
}
