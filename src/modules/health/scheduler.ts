/**
 * When each subject is due. Every subject has its own chain of due times, one interval apart
 * with ±10% jitter per round; a subject seen for the first time (at start, or added later) is
 * placed at a random point of the next interval, so subjects spread evenly over it and never
 * fire all at once. One timer serves them all (a min-heap on due time).
 */

export const JITTER = 0.1;

/** Where a newly seen subject is first due: a random point of the next interval. */
export function firstDue(now: number, intervalMs: number, random: () => number): number {
  return now + intervalMs * random();
}

/**
 * The due time after `previous`: one interval later, ±10%. A subject that fell more than a whole
 * interval behind (the process stalled) is spread over the next interval again rather than
 * having every late subject fire at once.
 */
export function nextDue(previous: number, intervalMs: number, now: number, random: () => number): number {
  const next = previous + intervalMs * (1 + JITTER * (2 * random() - 1));
  return next < now ? firstDue(now, intervalMs, random) : next;
}

interface HeapItem {
  due: number;
  key: string;
}

/** A binary min-heap on `due`. */
class DueHeap {
  private items: HeapItem[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): HeapItem | undefined {
    return this.items[0];
  }

  push(item: HeapItem): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.due <= item.due) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  pop(): HeapItem | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (!top || !last || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right]!.due < items[left]!.due ? right : left;
      if (items[child]!.due >= last.due) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }

  clear(): void {
    this.items = [];
  }
}

/**
 * Calls `onDue(key, dueAt)` for each key when it is due, then schedules its next round. Times are
 * `performance.now()` milliseconds. Removing a key leaves its heap item behind; it is skipped
 * when it surfaces (lazy deletion keeps add/remove O(log n) and O(1)).
 */
export class Schedule {
  private readonly heap = new DueHeap();
  private readonly dues = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private running = false;

  constructor(
    private intervalMs: number,
    private readonly onDue: (key: string, dueAt: number) => void,
    private readonly random: () => number = Math.random,
  ) {}

  get interval(): number {
    return this.intervalMs;
  }

  has(key: string): boolean {
    return this.dues.has(key);
  }

  get size(): number {
    return this.dues.size;
  }

  add(key: string): void {
    if (this.dues.has(key)) return;
    const due = firstDue(performance.now(), this.intervalMs, this.random);
    this.dues.set(key, due);
    this.heap.push({ due, key });
    this.arm();
  }

  remove(key: string): void {
    this.dues.delete(key);
  }

  /**
   * A new interval takes effect at once: every subject is spread over the new interval from now
   * (no restart, and no burst when the interval shrinks).
   */
  retime(intervalMs: number): void {
    this.intervalMs = intervalMs;
    const now = performance.now();
    this.heap.clear();
    for (const key of this.dues.keys()) {
      const due = firstDue(now, intervalMs, this.random);
      this.dues.set(key, due);
      this.heap.push({ due, key });
    }
    this.disarm();
    this.arm();
  }

  start(): void {
    this.running = true;
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.disarm();
  }

  private arm(): void {
    if (!this.running) return;
    const next = this.peekValid();
    if (next === undefined || next.due >= this.timerAt) return;
    this.disarm();
    this.timerAt = next.due;
    // The server keeps the process alive while it serves; a monitor left running must not.
    this.timer = setTimeout(() => this.fire(), Math.max(0, next.due - performance.now()));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    const due: HeapItem[] = [];
    for (let item = this.peekValid(); item && item.due <= now; item = this.peekValid()) {
      this.heap.pop();
      const next = nextDue(item.due, this.intervalMs, now, this.random);
      this.dues.set(item.key, next);
      this.heap.push({ due: next, key: item.key });
      due.push(item);
    }
    for (const item of due) {
      if (!this.running) return;
      this.onDue(item.key, item.due);
    }
    this.arm();
  }

  /** The earliest heap item that is still current, dropping stale ones on the way. */
  private peekValid(): HeapItem | undefined {
    for (let item = this.heap.peek(); item; item = this.heap.peek()) {
      if (this.dues.get(item.key) === item.due) return item;
      this.heap.pop();
    }
    return undefined;
  }
}

/** At most `limit` holders at once; the rest wait in order. `cancel()` turns every waiter away. */
export class Semaphore {
  private active = 0;
  private waiting: ((granted: boolean) => void)[] = [];

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves true with a slot (release it), or false when cancelled while waiting. */
  acquire(): Promise<boolean> {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter: `active` stays the same.
    if (next) next(true);
    else this.active--;
  }

  cancel(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve(false);
  }
}
