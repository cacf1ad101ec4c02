import { randomBytes } from 'node:crypto';
import type { Db } from '../../db/client.js';
import type { Overflow } from '../../lib/bounded-stream.js';
import type { Logger } from '../../lib/logger.js';
import type { Page } from '../../lib/pagination.js';
import { type EventFilter, LiveSubscription } from './live.js';
import { type EventColumns, type EventsArgs, entryOf, listEvents } from './query.js';
import { resumeAfter } from './resume.js';
import { deleteOlderThan, insertEvents, lastStoredSeq } from './store.js';
import { type Actor, type AppEvent, atLeast, type EventLogEntry, type Severity } from './types.js';

export type { EventFilter };

export interface EventBusOptions {
  db: Db;
  log: Logger;
  /** EVENT_LOG_MIN_SEVERITY */
  minStoredSeverity: Severity;
  // Tuning; the defaults suit production, tests shrink them.
  /**
   * Entries a live subscriber may lag behind before it is ended (default 10,000: ten full write
   * batches, so a burst such as the first health round over thousands of nodes does not end a
   * subscriber that keeps up).
   */
  subscriberQueueLimit?: number;
  /** Entries kept for a retry while the database is unavailable; the oldest go beyond (default 10,000). */
  maxUnwritten?: number;
  /** First retry after a failed write; doubles up to 30 s (default 1 s). */
  retryDelayMs?: number;
  /** Rows per DELETE of the retention purge (default 5,000). */
  purgeBatchSize?: number;
  /** The first purge this long after start() (default 30 s), then every purgeIntervalMs (default 1 h). */
  purgeDelayMs?: number;
  purgeIntervalMs?: number;
}

/** What a service needs to put a configuration change on the audit trail. */
export interface Audit {
  events: Pick<EventBus, 'record'>;
  principal: Actor;
}

/** Work that must be done before a change is acknowledged (see EventBus.react). */
export type Reaction = (entry: EventLogEntry) => Promise<void> | void;

interface Item {
  event: AppEvent;
  actor: Actor | null;
  createdAt: Date;
  store: boolean;
  /** record()'s caller, told once the entry is published. */
  published?: (entry: EventLogEntry) => void;
}

const MAX_BATCH = 1_000;
const MAX_RETRY_DELAY_MS = 30_000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The event bus: every event is published live to subscribers; those the policy keeps (severity at
 * least `minStoredSeverity`, or marked `alwaysStored`) are also written to the event log.
 *
 * One writer per process drains a queue: each batch is one transaction with one multi-row INSERT,
 * and its entries are published only after it committed, in seq order. Entries that are not stored
 * travel the same queue, so subscribers see everything in emission order, each with the position
 * (last stored seq) its catch-up cursor needs. When a write fails, the entries are published anyway
 * and kept (bounded) for a retry with backoff; until that succeeds, newer entries are not written
 * ahead of them, so the log stays in emission order.
 */
export class EventBus {
  private readonly db: Db;
  private readonly log: Logger;
  private readonly subscribers = new Set<LiveSubscription>();
  private readonly reactions = new Map<string, Set<Reaction>>();
  private readonly liveIdPrefix = `live-${randomBytes(4).toString('hex')}-`;
  private liveCounter = 0;

  private pending: Item[] = [];
  /** Published but not yet written (a write failed); retried before anything newer is written. */
  private unwritten: Item[] = [];
  private retryDue = false;
  private retryDelayMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private scheduled = false;
  /** The last stored seq this process knows of; null until first needed. */
  private lastPosition: bigint | null = null;

  /** Several instances write the log (issue 22): stored entries are published in seq order. */
  private shared: { forwardLive: (entry: EventLogEntry) => void } | null = null;
  /** Another instance stored entries: read them (in the writer loop, so in seq order). */
  private tailDue = false;
  private purgeTimer: NodeJS.Timeout | null = null;
  private purgeGate: () => boolean = () => true;
  private purging: Promise<unknown> | null = null;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(readonly options: EventBusOptions) {
    this.db = options.db;
    this.log = options.log;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
  }

  /** Publishes an event (and stores it when policy says so). Never throws; storage is asynchronous. */
  emit(event: AppEvent, actor?: Actor | null): void {
    try {
      this.enqueue(event, actor ?? null);
    } catch (error) {
      this.log.error({ err: error, type: event?.type }, 'could not emit an event');
    }
  }

  /**
   * As emit, resolving once the entry is stored (when the policy stores it) and published. When
   * the write fails the entry is still published (unstored, kept for a retry) and resolves so.
   * Null once the bus is closed. Never rejects.
   */
  record(event: AppEvent, actor?: Actor | null): Promise<EventLogEntry | null> {
    return new Promise((resolve) => {
      try {
        if (!this.enqueue(event, actor ?? null, resolve)) resolve(null);
      } catch (error) {
        this.log.error({ err: error, type: event?.type }, 'could not record an event');
        resolve(null);
      }
    });
  }

  /** One page of the stored log (see query.ts); `select` as listEvents takes it. */
  list(args: EventsArgs, select?: EventColumns): Promise<Page<EventLogEntry>> {
    return listEvents(this.db, args, select);
  }

  /** Live entries matching the filter, until the consumer returns or the bus closes. */
  subscribe(filter: EventFilter): AsyncIterableIterator<EventLogEntry | Overflow> {
    const subscription = new LiveSubscription(filter, this.options.subscriberQueueLimit ?? 10_000, (s) =>
      this.subscribers.delete(s),
    );
    if (this.closed) subscription.end();
    else this.subscribers.add(subscription);
    return subscription;
  }

  /**
   * Stored entries after a catch-up cursor, then live ones, with no gap and no duplicate
   * (`eventLogged(after:)`, resume.ts). A cursor that is not a catch-up cursor is BAD_USER_INPUT.
   */
  resume(filter: EventFilter, after: string): AsyncIterableIterator<EventLogEntry | Overflow> {
    return resumeAfter(this, filter, after);
  }

  /**
   * Runs `reaction` for every published entry of one of `types`, and holds record() of that entry
   * until it has finished: state derived from a change (the route registry) is current by the time
   * the change is acknowledged. A reaction that throws is logged; the entry is published regardless.
   * Returns the function that removes it.
   */
  react(types: readonly AppEvent['type'][], reaction: Reaction): () => void {
    for (const type of types) {
      const set = this.reactions.get(type) ?? new Set<Reaction>();
      this.reactions.set(type, set);
      set.add(reaction);
    }
    return () => {
      for (const type of types) this.reactions.get(type)?.delete(reaction);
    };
  }

  /**
   * Several instances share the log. Every stored entry reaches this instance's subscribers (and
   * reactions) in seq order, which is commit order (store.ts), with no gap and none twice: before
   * publishing what it stored itself, the writer publishes what others stored below it, and
   * `catchUp()` (another instance stored something; Redis is back) reads what is past the last
   * published seq. Entries that are not stored travel through `forwardLive` (at most once) and
   * arrive through `deliverLive`.
   */
  async share(forwardLive: (entry: EventLogEntry) => void): Promise<void> {
    this.shared = { forwardLive };
    this.lastPosition ??= await lastStoredSeq(this.db);
  }

  /** Reads (soon, in order) the entries other instances stored since the last one published. */
  catchUp(): void {
    if (this.closed || !this.shared) return;
    this.tailDue = true;
    this.drain();
  }

  /** An entry another instance published without storing it: to subscribers only. */
  deliverLive(entry: EventLogEntry): void {
    if (this.closed) return;
    const local = { ...entry, createdAt: new Date(entry.createdAt), position: this.lastPosition ?? 0n };
    for (const subscription of this.subscribers)
      if (!subscription.publish(local)) this.subscribers.delete(subscription);
  }

  /** Live subscribers right now (for metrics and tests). */
  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Several instances: only the leader purges (src/cluster); the others skip their turns. */
  purgeOnlyWhen(gate: () => boolean): void {
    this.purgeGate = gate;
  }

  /** Starts the retention purge: shortly after start, then hourly. */
  start(): void {
    if (this.closed || this.purgeTimer) return;
    const schedule = (delayMs: number) => {
      this.purgeTimer = setTimeout(async () => {
        if (!this.purgeGate()) {
          schedule(this.options.purgeIntervalMs ?? 60 * 60 * 1000);
          return;
        }
        this.purging = this.purge().catch((error: unknown) =>
          this.log.error({ err: error }, 'event log retention purge failed; trying again next time'),
        );
        await this.purging;
        this.purging = null;
        if (!this.closed) schedule(this.options.purgeIntervalMs ?? 60 * 60 * 1000);
      }, delayMs).unref();
    };
    schedule(this.options.purgeDelayMs ?? 30_000);
  }

  /**
   * Deletes entries older than the `staleThresholdDays` setting, in batches, then publishes one
   * INFO `events.purged` (none when nothing was old enough). Resolves to the number deleted.
   */
  async purge(now = new Date()): Promise<number> {
    // Read here rather than through SettingsService, which itself depends on this bus.
    const settings = await this.db.settings.findUnique({ where: { id: 1 } });
    const days = settings?.staleThresholdDays ?? 7;
    const cutoff = new Date(now.getTime() - days * DAY_MS);
    const deleted = await deleteOlderThan(this.db, cutoff, this.options.purgeBatchSize ?? 5_000, () => this.closed);
    if (deleted > 0) {
      await this.record({
        type: 'events.purged',
        source: 'system',
        severity: 'INFO',
        message: `purged ${deleted} event log ${deleted === 1 ? 'entry' : 'entries'} older than ${days} days`,
        details: { deleted, olderThan: cutoff.toISOString() },
      });
    }
    return deleted;
  }

  /** Stops the purge, flushes pending writes (one last attempt), ends subscriptions. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (this.purgeTimer) clearTimeout(this.purgeTimer);
      await this.purging;
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.retryDue = true;
      while (this.running || this.pending.length > 0 || (this.unwritten.length > 0 && this.retryDue)) {
        this.drain();
        await this.running;
      }
      if (this.unwritten.length > 0) {
        this.log.error(
          { lost: this.unwritten.length },
          'event log entries could not be written before shutdown (they were published live)',
        );
      }
      for (const subscription of this.subscribers) subscription.end();
      this.subscribers.clear();
    })();
    return this.closing;
  }

  private enqueue(event: AppEvent, actor: Actor | null, published?: Item['published']): boolean {
    if (this.closed) {
      this.log.debug({ type: event.type }, 'event after the bus closed: dropped');
      return false;
    }
    // Live subscribers see exactly what the log stores: JSON, not Dates or class instances.
    const normalised = { ...event, details: JSON.parse(JSON.stringify(event.details ?? null)) } as AppEvent;
    const store = event.alwaysStored === true || atLeast(event.severity, this.options.minStoredSeverity);
    this.pending.push({ event: normalised, actor, createdAt: new Date(), store, published });
    if (!this.scheduled && !this.running) {
      // Coalesce what is emitted in the same tick into one batch.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.drain();
      });
    }
    return true;
  }

  /** Starts the writer unless it runs; it loops until nothing is left to do. */
  private drain(): void {
    if (this.running) return;
    this.running = this.run()
      .catch((error: unknown) => this.log.error({ err: error }, 'event bus writer failed'))
      .finally(() => {
        this.running = null;
        if (this.pending.length > 0 || this.tailDue || (this.unwritten.length > 0 && this.retryDue)) this.drain();
      });
  }

  private async run(): Promise<void> {
    if (this.lastPosition === null) {
      this.lastPosition = await lastStoredSeq(this.db).catch(() => null);
    }
    for (;;) {
      if (this.tailDue) await this.publishStoredElsewhere();
      if (this.unwritten.length > 0 && this.retryDue) await this.retryWrites();
      const batch = this.pending.splice(0, MAX_BATCH);
      if (batch.length === 0) return;
      if (this.unwritten.length > 0) {
        this.publishUnwritten(batch);
        continue;
      }
      const toStore = batch.filter((item) => item.store);
      let seqs: bigint[] = [];
      if (toStore.length > 0) {
        try {
          seqs = await insertEvents(this.db, toStore);
        } catch (error) {
          this.log.error(
            { err: error, entries: toStore.length },
            'event log write failed; publishing the entries live and keeping them for a retry',
          );
          this.publishUnwritten(batch);
          this.scheduleRetry();
          continue;
        }
      }
      if (seqs.length > 0) await this.publishStoredElsewhere(seqs[0]);
      let next = 0;
      for (const item of batch) {
        const seq = item.store ? seqs[next++] : undefined;
        if (seq !== undefined) this.lastPosition = seq;
        this.publish(item, seq);
      }
    }
  }

  /**
   * Shared log only: publishes the stored entries past the last published seq (and below
   * `before`, this instance's own next ones), oldest first. A failed read is tried again at the
   * next catch-up (Redis traffic, or the periodic one of events/cluster.ts).
   */
  private async publishStoredElsewhere(before?: bigint): Promise<void> {
    if (!this.shared) return;
    this.tailDue = false;
    try {
      for (;;) {
        const after = this.lastPosition ?? 0n;
        const rows = await this.db.eventLog.findMany({
          where: { seq: before === undefined ? { gt: after } : { gt: after, lt: before } },
          orderBy: { seq: 'asc' },
          take: MAX_BATCH,
        });
        for (const row of rows) {
          this.lastPosition = row.seq;
          this.publishEntry(entryOf(row));
        }
        if (rows.length < MAX_BATCH) return;
      }
    } catch (error) {
      this.log.warn(
        { err: error },
        'could not read the entries other instances stored; trying again at the next catch-up',
      );
    }
  }

  /** Writes what failed before, oldest first; on failure, waits for the next retry. */
  private async retryWrites(): Promise<void> {
    let written = 0;
    while (this.unwritten.length > 0) {
      const chunk = this.unwritten.slice(0, MAX_BATCH);
      let seqs: bigint[];
      try {
        seqs = await insertEvents(this.db, chunk);
      } catch (error) {
        this.log.error({ err: error, unwritten: this.unwritten.length }, 'event log write retry failed');
        this.retryDue = false;
        this.scheduleRetry();
        return;
      }
      this.unwritten.splice(0, chunk.length);
      // Published live already; what others stored before them comes first.
      if (seqs.length > 0) await this.publishStoredElsewhere(seqs[0]);
      this.lastPosition = seqs.at(-1) ?? this.lastPosition;
      written += chunk.length;
    }
    this.retryDue = false;
    this.retryDelayMs = this.options.retryDelayMs ?? 1_000;
    this.log.info({ written }, 'event log writes resumed');
  }

  /** Publishes entries the log does not have (yet); those the policy stores wait for a retry. */
  private publishUnwritten(batch: Item[]): void {
    for (const item of batch) {
      this.publish(item, undefined);
      if (item.store) this.unwritten.push(item);
    }
    const limit = this.options.maxUnwritten ?? 10_000;
    if (this.unwritten.length > limit) {
      const dropped = this.unwritten.splice(0, this.unwritten.length - limit);
      this.log.error(
        { dropped: dropped.length, limit },
        'event log unavailable for too long: dropped the oldest unwritten entries (they were published live)',
      );
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryDue = true;
      this.drain();
    }, delay).unref();
  }

  /** Hands an entry to every matching subscriber: stored ones as their seq, others as `live-…`. */
  private publish(item: Item, seq: bigint | undefined): void {
    const entry: EventLogEntry = {
      id: seq === undefined ? `${this.liveIdPrefix}${++this.liveCounter}` : seq.toString(),
      severity: item.event.severity,
      source: item.event.source,
      type: item.event.type,
      message: item.event.message,
      details: item.event.details,
      actor: item.actor,
      createdAt: item.createdAt,
      position: seq ?? this.lastPosition ?? 0n,
    };
    // Stored ones reach the others through the log (an unwritten one once it is written).
    if (!item.store) this.forward(entry);
    const reacted = this.publishEntry(entry);
    if (!item.published) return;
    if (reacted) void reacted.then(() => item.published?.(entry));
    else item.published(entry);
  }

  /** Hands a live-only entry to the other instances; their trouble is never this publication's. */
  private forward(entry: EventLogEntry): void {
    try {
      this.shared?.forwardLive(entry);
    } catch (error) {
      this.log.warn({ err: error, type: entry.type }, 'could not pass a live event to the other instances');
    }
  }

  /** To every subscriber, and to the reactions (settled when they are; undefined when none). */
  private publishEntry(entry: EventLogEntry): Promise<unknown> | undefined {
    for (const subscription of this.subscribers)
      if (!subscription.publish(entry)) this.subscribers.delete(subscription);
    return this.runReactions(entry);
  }

  /** The entry's reactions, settled (never rejects); undefined when it has none. */
  private runReactions(entry: EventLogEntry): Promise<unknown> | undefined {
    const reactions = this.reactions.get(entry.type);
    if (!reactions?.size) return undefined;
    return Promise.all(
      [...reactions].map(async (reaction) => {
        try {
          await reaction(entry);
        } catch (error) {
          this.log.error({ err: error, type: entry.type }, 'a reaction to an event failed');
        }
      }),
    );
  }
}
