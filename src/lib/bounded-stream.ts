/**
 * The one signal of a live stream that was ended because its consumer fell too far behind: the
 * stream's last value. `src/graphql/overflow.ts` turns it into SUBSCRIBER_TOO_SLOW.
 */
export class Overflow {
  constructor(
    /** What was queued when the stream overflowed. */
    readonly queued: { items: number; weight: number },
    /** The bound it hit: items, or weight (bytes) when the stream is weighed. */
    readonly limit: number,
  ) {}
}

export interface BoundedStreamLimits<T> {
  /** Items queued at most. */
  maxItems: number;
  /** Total weight queued at most (a single heavier item is still taken into an empty queue). */
  maxWeight?: number;
  weigh?: (item: T) => number;
}

/**
 * A live stream with a bounded queue, read as an async iterator. Producers `push` items; a
 * consumer that waits gets them at once, otherwise they queue up to the limits. A full queue
 * takes nothing more (`push` says so) and the producer ends the stream, with an Overflow when it
 * was for falling behind. Memory never grows past the bound, and no transport-specific code is
 * needed: graphql-ws and SSE pull only as fast as they can send.
 *
 * Ending keeps what is queued for the consumer unless `dropQueued` (for streams whose consumer
 * re-reads the state after an overflow anyway), then yields the Overflow, if any, then is done.
 */
export class BoundedStream<T> implements AsyncIterableIterator<T | Overflow> {
  private queue: T[] = [];
  private head = 0;
  private weight = 0;
  private waiting: ((result: IteratorResult<T | Overflow>) => void) | null = null;
  /** Set once the producer is done: what follows the queue (an Overflow, or nothing). */
  private ending: { overflow: Overflow | null } | null = null;
  private finished = false;

  constructor(
    private readonly limits: BoundedStreamLimits<T>,
    /** Called once when the consumer stops early (`return()`), not when the producer ended it. */
    private readonly onReturn?: (stream: BoundedStream<T>) => void,
  ) {}

  /** Items and weight queued now. */
  get queued(): { items: number; weight: number } {
    return { items: this.queue.length - this.head, weight: this.weight };
  }

  get ended(): boolean {
    return this.ending !== null || this.finished;
  }

  /** Hands the item over or queues it; false when the queue is full (nothing was queued). */
  push(item: T): boolean {
    if (this.ended) return true;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ value: item, done: false });
      return true;
    }
    const { maxItems, maxWeight, weigh } = this.limits;
    const items = this.queue.length - this.head;
    const itemWeight = weigh ? weigh(item) : 0;
    if (items >= maxItems || (maxWeight !== undefined && items > 0 && this.weight + itemWeight > maxWeight)) {
      return false;
    }
    this.queue.push(item);
    this.weight += itemWeight;
    return true;
  }

  /** The producer is done: the consumer gets what is queued (unless dropped), the overflow, then the end. */
  end(options: { overflow?: Overflow; dropQueued?: boolean } = {}): void {
    if (this.ended) return;
    if (options.dropQueued) this.clear();
    this.ending = { overflow: options.overflow ?? null };
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve(this.afterQueue());
    }
  }

  /** Ends the stream for falling behind, with an Overflow describing what was queued. */
  overflow(options: { dropQueued?: boolean } = {}): void {
    const limit = this.limits.maxWeight ?? this.limits.maxItems;
    this.end({ overflow: new Overflow(this.queued, limit), dropQueued: options.dropQueued });
  }

  next(): Promise<IteratorResult<T | Overflow>> {
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    if (this.head < this.queue.length) return Promise.resolve({ value: this.shift(), done: false });
    if (this.ending) return Promise.resolve(this.afterQueue());
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T | Overflow>> {
    if (!this.finished) {
      const endedByProducer = this.ending !== null;
      this.finished = true;
      this.clear();
      this.waiting?.({ value: undefined, done: true });
      this.waiting = null;
      if (!endedByProducer) this.onReturn?.(this);
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(): Promise<IteratorResult<T | Overflow>> {
    return this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private clear(): void {
    this.queue = [];
    this.head = 0;
    this.weight = 0;
  }

  private shift(): T {
    const item = this.queue[this.head] as T;
    this.queue[this.head] = undefined as T; // let a large payload go now
    this.head++;
    if (this.limits.weigh) this.weight -= this.limits.weigh(item);
    // Compact now and then rather than shift() per item (O(n) each on a long queue).
    if (this.head === this.queue.length) this.clear();
    else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** The result once the queue has drained after the producer ended. */
  private afterQueue(): IteratorResult<T | Overflow> {
    const overflow = this.ending?.overflow;
    if (overflow && this.ending) {
      this.ending.overflow = null;
      return { value: overflow, done: false };
    }
    this.finished = true;
    return { value: undefined, done: true };
  }
}
