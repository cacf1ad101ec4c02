import { CloseCode } from './close-codes.js';

/**
 * The relay core: per live session, one publisher slot and a set of frame subscribers. It knows
 * nothing of WebSockets, GraphQL or the database; transports plug in through `Publisher` and
 * `FrameSubscriber`, and LiveSessions (live.ts) persists what happens here. Frames of a
 * publisher on another instance (REDIS_URL) enter through `Channel.relay`.
 */

export interface Counters {
  framesRelayed: number;
  bytesRelayed: number;
  operatorConnects: number;
  operatorDisconnects: number;
}

/** One message from the publisher. Immutable, and shared by every subscriber that receives it. */
export class Frame {
  private encoded: string | undefined;

  constructor(
    readonly sessionId: string,
    /** Position in the session: 1 for its first frame ever (it is the session's framesRelayed after it). */
    readonly seq: number,
    /** Epoch milliseconds. */
    readonly receivedAt: number,
    /** The exact bytes received; raw operators are sent this very buffer. */
    readonly payload: Buffer,
    readonly binary: boolean,
  ) {}

  get size(): number {
    return this.payload.length;
  }

  /** Base64 for binary frames, the text for text frames: computed once, on first use, for all GraphQL subscribers. */
  get data(): string {
    this.encoded ??= this.binary ? this.payload.toString('base64') : this.payload.toString('utf8');
    return this.encoded;
  }
}

/** What a subscriber had queued when it could not take another frame. */
export interface Backlog {
  bytes: number;
  frames: number;
}

/** Where frames go: a raw operator socket, or a GraphQL `streamFrames` subscription. */
export interface FrameSubscriber {
  /** The operator's user id (raw), or who subscribed (GraphQL); for `Operator.connected` and events. */
  readonly userId: string;
  /** Raw operators count toward SESSION_MAX_OPERATORS and `Operator.connected`; GraphQL subscribers do not. */
  readonly isOperator: boolean;
  /**
   * Takes a frame without waiting: null when accepted, or the backlog that stops it from taking
   * more (the hub then drops it with 4408). Must never block or copy the payload per subscriber.
   */
  offer(frame: Frame): Backlog | null;
  /** The hub has let go of it (dropped, session ended, shutdown). Called at most once. */
  close(code: CloseCode): void;
}

/** The publisher as the hub sees it: something it can close. Its frames come in through `publish`. */
export interface Publisher {
  close(code: CloseCode): void;
}

export interface ChannelEvents {
  /** A subscriber could not keep up and was closed with 4408 (already removed). */
  dropped(channel: Channel, subscriber: FrameSubscriber, backlog: Backlog): void;
  /** This instance's publisher sent a frame (relayed here already): for the other instances. */
  published(channel: Channel, frame: Frame): void;
}

/** The session's totals as the last frame from a publisher on another instance gave them. */
export interface RemoteTotals {
  framesRelayed: number;
  bytesRelayed: number;
}

export type JoinResult = 'ok' | 'full' | 'closed';

/** One live session's relay state. Every method is synchronous: ordering is the event loop's. */
export class Channel {
  private publisher: Publisher | null = null;
  /** Insertion-ordered; iterated once per frame. */
  private readonly subscribers = new Set<FrameSubscriber>();
  /** Raw operator sockets per user id (a user may connect more than once). */
  private readonly operatorSockets = new Map<string, number>();
  private operatorCount = 0;
  /** Connections being set up against this channel: it is not reaped while any are. */
  leases = 0;
  /** Ended or shut down: no one joins any more, frames are ignored. */
  closed = false;
  /** What this instance did (and the stored counters it started from); written as increments. */
  readonly counters: Counters;
  /** Set by frames from a publisher on another instance: they are counted there, not here. */
  remote: RemoteTotals | null = null;

  constructor(
    readonly sessionId: string,
    base: Counters,
    private readonly events: ChannelEvents,
  ) {
    this.counters = { ...base };
  }

  get hasPublisher(): boolean {
    return this.publisher !== null;
  }

  get isIdle(): boolean {
    return this.publisher === null && this.subscribers.size === 0 && this.leases === 0;
  }

  isConnected(userId: string): boolean {
    return this.operatorSockets.has(userId);
  }

  claimPublisher(publisher: Publisher): 'ok' | 'taken' | 'closed' {
    if (this.closed) return 'closed';
    if (this.publisher) return 'taken';
    this.publisher = publisher;
    return 'ok';
  }

  /** False when it was not (or no longer) the publisher, e.g. the hub closed it already. */
  releasePublisher(publisher: Publisher): boolean {
    if (this.publisher !== publisher) return false;
    this.publisher = null;
    return true;
  }

  join(subscriber: FrameSubscriber, maxOperators: number): JoinResult {
    if (this.closed) return 'closed';
    if (subscriber.isOperator) {
      if (this.operatorCount >= maxOperators) return 'full';
      this.operatorCount++;
      this.operatorSockets.set(subscriber.userId, (this.operatorSockets.get(subscriber.userId) ?? 0) + 1);
      this.counters.operatorConnects++;
    }
    this.subscribers.add(subscriber);
    return 'ok';
  }

  /** False when it had left already. Raw operators leaving count as a disconnect. */
  leave(subscriber: FrameSubscriber): boolean {
    if (!this.subscribers.delete(subscriber)) return false;
    if (subscriber.isOperator) {
      this.operatorCount--;
      const sockets = (this.operatorSockets.get(subscriber.userId) ?? 1) - 1;
      if (sockets > 0) this.operatorSockets.set(subscriber.userId, sockets);
      else this.operatorSockets.delete(subscriber.userId);
      this.counters.operatorDisconnects++;
    }
    return true;
  }

  /**
   * Relays one publisher message to every subscriber, in order, as one shared Frame. A subscriber
   * that cannot take it is dropped on the spot; the others (and the publisher) never wait for it.
   */
  publish(from: Publisher, payload: Buffer, binary: boolean): Frame | null {
    if (this.publisher !== from || this.closed) return null;
    const counters = this.counters;
    counters.framesRelayed++;
    counters.bytesRelayed += payload.length;
    const frame = new Frame(this.sessionId, counters.framesRelayed, Date.now(), payload, binary);
    this.fanOut(frame);
    this.events.published(this, frame);
    return frame;
  }

  /**
   * Relays a frame of the session's publisher on another instance (which counted it) to the
   * subscribers here. Ignored once closed, or while a publisher is connected here.
   */
  relay(frame: Frame, bytesRelayed: number): void {
    if (this.closed || this.publisher) return;
    this.remote = { framesRelayed: frame.seq, bytesRelayed };
    this.fanOut(frame);
  }

  /** Hands the frame to every subscriber; one that cannot take it is dropped on the spot. */
  private fanOut(frame: Frame): void {
    // Deleting from a Set while iterating it is safe: the dropped subscriber is simply not revisited.
    for (const subscriber of this.subscribers) {
      const backlog = subscriber.offer(frame);
      if (backlog) {
        this.leave(subscriber);
        subscriber.close(CloseCode.TooSlow);
        this.events.dropped(this, subscriber, backlog);
      }
    }
  }

  /**
   * Closes everyone with `code` (4410 ended, 1001 shutdown) and refuses newcomers. Returns whether
   * a publisher was connected.
   */
  close(code: CloseCode): { hadPublisher: boolean } {
    this.closed = true;
    const publisher = this.publisher;
    this.publisher = null;
    publisher?.close(code);
    for (const subscriber of [...this.subscribers]) {
      this.leave(subscriber);
      subscriber.close(code);
    }
    return { hadPublisher: publisher !== null };
  }
}

/** The live channels of this process, by session id (lower-case UUID). */
export class Hub {
  private readonly channels = new Map<string, Channel>();

  constructor(private readonly events: ChannelEvents) {}

  get(sessionId: string): Channel | undefined {
    return this.channels.get(sessionId);
  }

  /** A new channel starting from the session's stored counters. The caller makes sure none exists. */
  open(sessionId: string, base: Counters): Channel {
    const channel = new Channel(sessionId, base, this.events);
    this.channels.set(sessionId, channel);
    return channel;
  }

  remove(channel: Channel): void {
    if (this.channels.get(channel.sessionId) === channel) this.channels.delete(channel.sessionId);
  }

  get size(): number {
    return this.channels.size;
  }

  [Symbol.iterator](): IterableIterator<Channel> {
    return this.channels.values();
  }
}
