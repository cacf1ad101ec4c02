import type { HealthChange, HealthSubjectKind } from './types.js';

/**
 * Live health transitions to every subscriber, each with its own bounded queue. A subscriber that
 * lets `limit` changes pile up (a stalled client) gets an Overflow marker instead of further
 * changes and then its stream ends: silently dropping a transition would leave its view of the
 * subjects wrong, and a clear end tells it to re-read the state and subscribe again.
 */
export interface Overflow {
  overflow: true;
  limit: number;
}

export type HealthStreamItem = HealthChange | Overflow;

export function isOverflow(item: HealthStreamItem): item is Overflow {
  return 'overflow' in item;
}

export class ChangeHub {
  private readonly subscribers = new Set<ChangeStream>();
  private closed = false;

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.subscribers.size;
  }

  /** Changes of the given kinds (all kinds when null or empty), until returned or closed. */
  subscribe(kinds: readonly HealthSubjectKind[] | null | undefined): AsyncIterableIterator<HealthStreamItem> {
    const wanted = kinds?.length ? new Set(kinds) : null;
    const stream = new ChangeStream(this.limit, wanted, () => this.subscribers.delete(stream));
    this.subscribers.add(stream);
    if (this.closed) stream.end();
    return stream;
  }

  publish(change: HealthChange): void {
    for (const stream of this.subscribers) stream.offer(change);
  }

  /** Ends every stream (shutdown). */
  close(): void {
    this.closed = true;
    for (const stream of [...this.subscribers]) stream.end();
  }
}

class ChangeStream implements AsyncIterableIterator<HealthStreamItem> {
  private queue: HealthStreamItem[] = [];
  private waiting: ((result: IteratorResult<HealthStreamItem>) => void) | undefined;
  /** No more offers are taken; what is queued is still delivered. */
  private ended = false;

  constructor(
    private readonly limit: number,
    private readonly kinds: ReadonlySet<HealthSubjectKind> | null,
    private readonly onEnd: () => void,
  ) {}

  offer(change: HealthChange): void {
    if (this.ended || (this.kinds && !this.kinds.has(change.subjectKind))) return;
    if (this.queue.length >= this.limit) {
      this.queue = [{ overflow: true, limit: this.limit }];
      this.end();
      return;
    }
    this.deliver(change);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    if (this.waiting && this.queue.length === 0) this.resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<HealthStreamItem>> {
    const value = this.queue.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<HealthStreamItem>> {
    this.queue = [];
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<HealthStreamItem> {
    return this;
  }

  private deliver(item: HealthStreamItem): void {
    if (this.waiting) this.resolve({ value: item, done: false });
    else this.queue.push(item);
  }

  private resolve(result: IteratorResult<HealthStreamItem>): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(result);
  }
}
