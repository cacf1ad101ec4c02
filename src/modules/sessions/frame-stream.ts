import { BoundedStream } from '../../lib/bounded-stream.js';
import { CloseCode } from './close-codes.js';
import type { Backlog, Frame, FrameSubscriber } from './hub.js';

export interface FrameStreamLimits {
  /** Bytes of frame payload queued (a single larger frame is accepted into an empty queue). */
  maxBytes: number;
  maxFrames: number;
}

/**
 * A GraphQL `streamFrames` subscription as a hub subscriber: a bounded stream (lib/bounded-stream)
 * of frames. A slow client fills it; past its bound the hub drops the subscriber, and the stream
 * delivers what it holds, then one Overflow, then ends. The hub ending the session (or shutdown)
 * completes it after what it holds.
 */
export class FrameStream extends BoundedStream<Frame> implements FrameSubscriber {
  readonly isOperator = false;

  constructor(
    readonly userId: string,
    limits: FrameStreamLimits,
    /** Called once when the consumer stops early (unsubscribe, client gone): leave the hub. */
    onReturn: (stream: FrameStream) => void,
  ) {
    super({ maxItems: limits.maxFrames, maxWeight: limits.maxBytes, weigh: (frame) => frame.size }, (stream) =>
      onReturn(stream as unknown as FrameStream),
    );
  }

  /** Null when taken; what is queued when full (the hub then drops this subscriber). */
  offer(frame: Frame): Backlog | null {
    if (this.push(frame)) return null;
    const { items, weight } = this.queued;
    return { frames: items, bytes: weight };
  }

  close(code: CloseCode): void {
    if (code === CloseCode.TooSlow) this.overflow();
    else this.end();
  }
}
