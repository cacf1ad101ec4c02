import { CloseCode } from './close-codes.js';
import type { Backlog, Frame, FrameSubscriber } from './hub.js';

/** Emitted once, last, by a stream the hub dropped for not keeping up. */
export class StreamOverflow {
  constructor(
    readonly backlog: Backlog,
    readonly limitBytes: number,
  ) {}
}

export interface FrameStreamLimits {
  /** Bytes of frame payload queued (a single larger frame is accepted into an empty queue). */
  maxBytes: number;
  maxFrames: number;
}

/**
 * A GraphQL `streamFrames` subscription as a hub subscriber: a bounded queue read as an async
 * iterator. GraphQL transports pull from it only as fast as they can send (graphql-ws awaits each
 * socket write), so a slow client fills the queue; past its bound the hub drops the stream, which
 * delivers what it holds, then one StreamOverflow, then ends. Memory never grows past the bound.
 * The hub ending the session (or shutdown) completes the stream after what it holds.
 */
export class FrameStream implements FrameSubscriber, AsyncIterableIterator<Frame | StreamOverflow> {
  readonly isOperator = false;
  private queue: Frame[] = [];
  private head = 0;
  private queuedBytes = 0;
  private waiting: ((result: IteratorResult<Frame | StreamOverflow>) => void) | null = null;
  /** Set when the hub lets go: what to deliver after the queue (an overflow, or nothing). */
  private ending: { overflow: StreamOverflow | null } | null = null;
  private finished = false;

  constructor(
    readonly userId: string,
    private readonly limits: FrameStreamLimits,
    /** Called once when the consumer stops early (unsubscribe, client gone): leave the hub. */
    private readonly onReturn: (stream: FrameStream) => void,
  ) {}

  offer(frame: Frame): Backlog | null {
    if (this.ending || this.finished) return null;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ value: frame, done: false });
      return null;
    }
    const frames = this.queue.length - this.head;
    if (frames >= this.limits.maxFrames || (frames > 0 && this.queuedBytes + frame.size > this.limits.maxBytes)) {
      return { bytes: this.queuedBytes, frames };
    }
    this.queue.push(frame);
    this.queuedBytes += frame.size;
    return null;
  }

  close(code: CloseCode): void {
    if (this.ending || this.finished) return;
    const overflow =
      code === CloseCode.TooSlow
        ? new StreamOverflow({ bytes: this.queuedBytes, frames: this.queue.length - this.head }, this.limits.maxBytes)
        : null;
    this.ending = { overflow };
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve(this.afterQueue());
    }
  }

  next(): Promise<IteratorResult<Frame | StreamOverflow>> {
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    if (this.head < this.queue.length) return Promise.resolve({ value: this.shift(), done: false });
    if (this.ending) return Promise.resolve(this.afterQueue());
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<Frame | StreamOverflow>> {
    if (!this.finished) {
      this.finished = true;
      this.queue = [];
      this.head = 0;
      this.queuedBytes = 0;
      this.waiting?.({ value: undefined, done: true });
      this.waiting = null;
      if (!this.ending) this.onReturn(this);
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(): Promise<IteratorResult<Frame | StreamOverflow>> {
    return this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private shift(): Frame {
    const frame = this.queue[this.head] as Frame;
    this.queue[this.head] = undefined as unknown as Frame; // let the payload go now
    this.head++;
    this.queuedBytes -= frame.size;
    // Compact now and then rather than shift() per frame (O(n) each on a long queue).
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return frame;
  }

  /** The result after the queue has drained, once the hub has let go. */
  private afterQueue(): IteratorResult<Frame | StreamOverflow> {
    const overflow = this.ending?.overflow;
    if (overflow && this.ending) {
      this.ending.overflow = null;
      return { value: overflow, done: false };
    }
    this.finished = true;
    return { value: undefined, done: true };
  }
}
