import { atLeast, type EventLogEntry, type Severity } from './types.js';

export interface EventFilter {
  minSeverity?: Severity | null;
  source?: string | null;
}

/** A live subscriber fell more than its queue limit behind and was ended. */
export class SubscriberOverflowError extends Error {
  override name = 'SubscriberOverflowError';
  constructor(readonly limit: number) {
    super(`the subscriber fell more than ${limit} events behind and was ended; catch up with events(after:)`);
  }
}

/**
 * One live subscriber: an async iterator over matching entries with a bounded queue. A consumer
 * that does not keep up is ended with SubscriberOverflowError rather than buffered without end.
 */
export class LiveSubscription implements AsyncIterableIterator<EventLogEntry> {
  private readonly queue: EventLogEntry[] = [];
  private waiting: ((result: IteratorResult<EventLogEntry>) => void) | null = null;
  private state: 'open' | 'ended' | Error = 'open';

  constructor(
    private readonly filter: EventFilter,
    private readonly limit: number,
    private readonly onEnd: (sub: LiveSubscription) => void,
  ) {}

  matches(entry: EventLogEntry): boolean {
    const { minSeverity, source } = this.filter;
    return (!minSeverity || atLeast(entry.severity, minSeverity)) && (!source || entry.source === source);
  }

  push(entry: EventLogEntry): void {
    if (this.state !== 'open' || !this.matches(entry)) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ done: false, value: entry });
      return;
    }
    this.queue.push(entry);
    if (this.queue.length > this.limit) this.fail(new SubscriberOverflowError(this.limit));
  }

  /** Ends the iteration; entries already queued are still delivered. */
  end(): void {
    if (this.state !== 'open') return;
    this.state = 'ended';
    this.onEnd(this);
    this.settleWaiting();
  }

  next(): Promise<IteratorResult<EventLogEntry>> {
    const entry = this.queue.shift();
    if (entry) return Promise.resolve({ done: false, value: entry });
    if (this.state instanceof Error) {
      const error = this.state;
      this.state = 'ended'; // reported once, then done
      return Promise.reject(error);
    }
    if (this.state === 'ended') return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<EventLogEntry>> {
    this.queue.length = 0;
    this.end();
    this.state = 'ended';
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private fail(error: Error): void {
    // What was queued is dropped: the consumer resumes from its last entry's cursor instead.
    this.queue.length = 0;
    this.state = error;
    this.onEnd(this);
  }

  private settleWaiting(): void {
    if (!this.waiting) return;
    const resolve = this.waiting;
    this.waiting = null;
    resolve({ done: true, value: undefined });
  }
}
