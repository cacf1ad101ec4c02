import type { Db } from '../../db/client.js';
import type { Logger } from '../../lib/logger.js';
import type { RelayLink } from '../cluster/index.js';
import type { Actor, AppEvent, EventBus } from '../events/index.js';
import { CloseCode } from './close-codes.js';
import { ClusterRelay } from './cluster-relay.js';
import { CounterBook, countersOf } from './counter-book.js';
import { FrameStream } from './frame-stream.js';
import { type Backlog, type Channel, type Counters, type FrameSubscriber, Hub, type Publisher } from './hub.js';
import { recoverActiveSessions, transition } from './lifecycle.js';
import { KeyedSerializer } from './serial.js';

/** How often changed counters are written while a session is live (and at every disconnect). */
const FLUSH_INTERVAL_MS = 1_000;

/**
 * The largest number of frames queued for one subscriber, whatever their size. The byte bound
 * (SESSION_OPERATOR_MAX_BUFFER) alone would let a flood of tiny frames queue millions of entries,
 * whose bookkeeping (Node's write queue, our queue) costs far more than their bytes. 8,192 frames
 * are over four minutes of a 30 fps stream, so a healthy subscriber never comes near it.
 */
export const MAX_QUEUED_FRAMES = 8_192;

export interface LiveSessionsOptions {
  db: Db;
  log: Logger;
  events: EventBus;
  /** SESSION_MAX_OPERATORS */
  maxOperators: number;
  /** SESSION_OPERATOR_MAX_BUFFER: bytes queued for one subscriber before it is dropped. */
  maxBufferBytes: number;
  /** INSTANCE_ID: recorded on the sessions this instance makes ACTIVE. */
  instance: string;
  /** The other instances (REDIS_URL); null for one process. */
  link: RelayLink | null;
}

/** What a connection needs to authenticate against the session it asked for. */
export interface SessionAuth {
  clientId: string;
  streamKeyHash: string;
}

/** A channel held open for a connection that is still being set up (see LiveSessions.open). */
export interface Lease {
  readonly channel: Channel;
  readonly session: SessionAuth;
  /** Idempotent. Attaching consumes the lease; call it when giving up instead. */
  release(): void;
}

export type AttachResult = 'ok' | 'taken' | 'full' | 'gone' | 'unavailable';

/**
 * Live sessions of this process: the hub plus what it means for the database. Each session's
 * database steps run one at a time (KeyedSerializer), so state changes land in the order they
 * happened. Counters live in memory and are written as increments every second while they change,
 * and at every disconnect, end and shutdown: never a write per frame.
 */
export class LiveSessions {
  readonly hub: Hub;
  private readonly cluster: ClusterRelay;
  private readonly stopWatching: () => void;
  private readonly serial = new KeyedSerializer();
  private readonly counterBook: CounterBook;
  private flushTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly options: LiveSessionsOptions) {
    this.hub = new Hub({
      dropped: (channel, subscriber, backlog) => this.dropped(channel, subscriber, backlog),
      published: (channel, frame) => this.cluster.publish(channel, frame),
    });
    this.cluster = new ClusterRelay(options.link, options.maxOperators);
    this.counterBook = new CounterBook(options.db);
    this.stopWatching = this.cluster.watch({
      ended: (sessionId) => this.endedElsewhere(sessionId),
      // An end announced while Redis was away is lost: the database says which ended.
      resumed: () => void this.closeFinished(),
    });
  }

  /**
   * Puts back to WAITING the sessions this instance left ACTIVE when it stopped without closing
   * them (kill -9, a crash), one WARN event each. Run once at start, before the relay accepts.
   */
  async recover(allActive: boolean): Promise<void> {
    const ids = await recoverActiveSessions(this.options.db, this.options.instance, allActive);
    for (const sessionId of ids) {
      this.options.events.emit({
        type: 'session.recovered',
        source: 'sessions',
        severity: 'WARN',
        message: `session ${sessionId} was ACTIVE when this instance stopped without closing it: back to WAITING`,
        details: { sessionId, instance: this.options.instance },
      });
    }
  }

  /** The stream key hash of a FINISHED session (null for any other): lets its publisher hear 4404. */
  async finishedStreamKeyHash(sessionId: string): Promise<string | null> {
    const row = await this.options.db.session.findUnique({
      where: { id: sessionId },
      select: { status: true, streamKeyHash: true },
    });
    return row?.status === 'FINISHED' ? row.streamKeyHash : null;
  }

  /**
   * Looks the session up and holds its channel (opening it from the stored counters when it is
   * not live yet). Null for an unknown or finished session, or during shutdown.
   */
  open(sessionId: string): Promise<Lease | null> {
    return this.serial.run(sessionId, async () => {
      if (this.closing) return null;
      const row = await this.options.db.session.findUnique({
        where: { id: sessionId },
        select: {
          clientId: true,
          streamKeyHash: true,
          status: true,
          framesRelayed: true,
          bytesRelayed: true,
          operatorConnects: true,
          operatorDisconnects: true,
        },
      });
      // close() may have run while the row was being read: it must not miss a channel opened now.
      if (!row || row.status === 'FINISHED' || this.closing) return null;
      let channel = this.hub.get(sessionId);
      if (!channel) {
        channel = this.hub.open(sessionId, countersOf(row));
        this.counterBook.track(channel);
        this.startFlushing();
        // Frames from a publisher on another instance arrive from now on.
        await this.cluster.follow(channel);
      }
      channel.leases++;
      const held = channel;
      let released = false;
      return {
        channel: held,
        session: { clientId: row.clientId, streamKeyHash: row.streamKeyHash },
        release: () => {
          if (released) return;
          released = true;
          held.leases--;
          this.reapIfIdle(held);
        },
      };
    });
  }

  /** Makes `publisher` the session's publisher and the session ACTIVE. */
  async attachPublisher(lease: Lease, publisher: Publisher): Promise<AttachResult> {
    const { channel } = lease;
    // One publisher cluster-wide: its place is taken first (at once on one process).
    const placed = await this.cluster.claim(channel, publisher, 'publisher');
    if (placed !== 'ok') {
      lease.release();
      return placed === 'full' ? 'taken' : 'unavailable';
    }
    const claimed = channel.claimPublisher(publisher);
    lease.release();
    if (claimed !== 'ok') {
      this.cluster.give(channel, publisher);
      return claimed === 'taken' ? 'taken' : 'gone';
    }
    const giveUp = () => {
      if (!channel.releasePublisher(publisher)) return;
      this.cluster.give(channel, publisher);
      void this.cluster.follow(channel);
      this.reapIfIdle(channel);
    };
    await this.cluster.follow(channel);
    let started: boolean;
    try {
      started = await this.serial.run(channel.sessionId, async () => {
        if (!(await transition(this.options.db, channel.sessionId, 'start', this.options.instance))) return false;
        if (this.cluster.clustered) await this.counterBook.catchUp(channel);
        return true;
      });
    } catch (error) {
      this.options.log.error({ err: error, sessionId: channel.sessionId }, 'cannot mark the session active');
      giveUp();
      return 'unavailable';
    }
    if (!started) {
      // Finished by someone else between the lookup and now (endSession serialises with us, so
      // only a write from outside this process gets here).
      giveUp();
      return 'gone';
    }
    this.emit('session.publisher_connected', channel.sessionId, 'INFO', 'publisher connected', {
      sessionId: channel.sessionId,
    });
    return 'ok';
  }

  /** The publisher went away (its socket closed). Back to WAITING unless the session ended. */
  detachPublisher(channel: Channel, publisher: Publisher, code: number): void {
    // False when the hub closed it itself (end, shutdown): those paths wrote the state already.
    if (!channel.releasePublisher(publisher)) return;
    this.cluster.give(channel, publisher);
    void this.cluster.follow(channel);
    const { sessionId } = channel;
    this.emit('session.publisher_disconnected', sessionId, 'INFO', `publisher disconnected (${code})`, {
      sessionId,
      code,
    });
    this.serial
      .run(sessionId, async () => {
        // Counters first: a publisher reconnecting to another instance starts from them.
        await this.counterBook.write(channel);
        await transition(this.options.db, sessionId, 'pause', this.options.instance);
      })
      .catch((error: unknown) => this.options.log.error({ err: error, sessionId }, 'cannot mark the session waiting'))
      .finally(() => this.reapIfIdle(channel));
  }

  /** Adds a raw operator (counted against the limit) and records it in the session's operators. */
  /** `actor`: the token the operator connected with (the event log's "who"; `userId` is only a label). */
  async attachOperator(lease: Lease, subscriber: FrameSubscriber, actor: Actor | null = null): Promise<AttachResult> {
    const { channel } = lease;
    // SESSION_MAX_OPERATORS across the cluster: the place is taken first (at once on one process).
    const placed = await this.cluster.claim(channel, subscriber, 'operator', subscriber.userId);
    if (placed !== 'ok') {
      lease.release();
      return placed;
    }
    const joined = channel.join(subscriber, this.options.maxOperators);
    lease.release();
    if (joined !== 'ok') {
      this.cluster.give(channel, subscriber);
      return joined === 'full' ? 'full' : 'gone';
    }
    try {
      // One INSERT … ON CONFLICT DO NOTHING: the first connection records when the user joined.
      await this.options.db.sessionOperator.createMany({
        data: [{ sessionId: channel.sessionId, userId: subscriber.userId }],
        skipDuplicates: true,
      });
    } catch (error) {
      this.options.log.error({ err: error, sessionId: channel.sessionId }, 'cannot record the operator');
      this.detach(channel, subscriber);
      return 'unavailable';
    }
    this.emit(
      'session.operator_connected',
      channel.sessionId,
      'INFO',
      `operator ${subscriber.userId} connected`,
      { sessionId: channel.sessionId, userId: subscriber.userId },
      actor,
    );
    return 'ok';
  }

  /** A subscriber went away on its own (socket closed, unsubscribed). */
  detachSubscriber(channel: Channel, subscriber: FrameSubscriber, code: number): void {
    if (!this.detach(channel, subscriber) || !subscriber.isOperator) return;
    this.emit(
      'session.operator_disconnected',
      channel.sessionId,
      'INFO',
      `operator ${subscriber.userId} disconnected (${code})`,
      { sessionId: channel.sessionId, userId: subscriber.userId, code },
    );
  }

  /** A GraphQL frame subscription; null for an unknown or finished session. */
  async subscribe(sessionId: string, userId: string): Promise<FrameStream | null> {
    const lease = await this.open(sessionId);
    if (!lease) return null;
    const { channel } = lease;
    const stream = new FrameStream(
      userId,
      { maxBytes: this.options.maxBufferBytes, maxFrames: MAX_QUEUED_FRAMES },
      (s) => this.detachSubscriber(channel, s, CloseCode.Normal),
    );
    const joined = channel.join(stream, this.options.maxOperators);
    lease.release();
    return joined === 'ok' ? stream : null;
  }

  /**
   * Finishes the session: FINISHED in the database first, then every socket closed with 4410 and
   * every subscription completed, then the final counters. False when it was not live (unknown or
   * finished already).
   */
  end(sessionId: string, actor: Actor | null): Promise<boolean> {
    return this.serial.run(sessionId, async () => {
      const finished = await transition(this.options.db, sessionId, 'finish', this.options.instance);
      // Every instance closes its sockets of the session (those here, just below).
      if (finished) this.cluster.announceEnd(sessionId);
      await this.closeEnded(sessionId);
      if (finished) {
        const counters = await this.counterBook.stored(sessionId);
        this.options.events.emit(
          {
            type: 'session.ended',
            source: 'sessions',
            severity: 'INFO',
            message: `session ${sessionId} ended`,
            details: { sessionId, framesRelayed: counters.framesRelayed, bytesRelayed: counters.bytesRelayed },
          },
          actor,
        );
      }
      return finished;
    });
  }

  /** The session's counters: the stored ones given, plus what this instance has not written yet. */
  counters(sessionId: string, stored: Counters): Counters {
    return this.counterBook.live(this.hub.get(sessionId), stored);
  }

  /** Whether a raw operator socket of the user is connected, here or (REDIS_URL) on another instance. */
  async isConnected(sessionId: string, userId: string): Promise<boolean> {
    if (this.hub.get(sessionId)?.isConnected(userId)) return true;
    const everywhere = await this.cluster.connectedOperators(sessionId);
    return everywhere?.has(userId) ?? false;
  }

  /**
   * Shutdown: closes everyone with 1001, ends every frame subscription, puts sessions that had a
   * publisher back to WAITING (a restart does not finish them) and writes the last counters.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.stopWatching();
    clearInterval(this.flushTimer);
    this.flushTimer = undefined;
    for (const channel of [...this.hub]) {
      const { hadPublisher } = channel.close(CloseCode.GoingAway);
      const { sessionId } = channel;
      this.serial
        .run(sessionId, async () => {
          await this.counterBook.write(channel);
          if (hadPublisher) await transition(this.options.db, sessionId, 'pause', this.options.instance);
          this.forget(channel);
        })
        .catch((error: unknown) => this.options.log.error({ err: error, sessionId }, 'cannot save the session'));
    }
    await this.serial.drain();
  }

  private detach(channel: Channel, subscriber: FrameSubscriber): boolean {
    if (!channel.leave(subscriber)) return false;
    this.cluster.give(channel, subscriber);
    this.reapIfIdle(channel);
    return true;
  }

  private dropped(channel: Channel, subscriber: FrameSubscriber, backlog: Backlog): void {
    const { sessionId } = channel;
    const limitBytes = this.options.maxBufferBytes;
    this.cluster.give(channel, subscriber);
    if (subscriber.isOperator) {
      this.emit(
        'session.operator_dropped',
        sessionId,
        'WARN',
        `operator ${subscriber.userId} dropped: too slow (${backlog.bytes} bytes, ${backlog.frames} frames queued)`,
        { sessionId, userId: subscriber.userId, bufferedBytes: backlog.bytes, limitBytes },
      );
    } else {
      this.emit(
        'session.subscription_dropped',
        sessionId,
        'WARN',
        `streamFrames subscription of ${subscriber.userId} ended: too slow (${backlog.frames} frames queued)`,
        {
          sessionId,
          subscriber: subscriber.userId,
          queuedBytes: backlog.bytes,
          queuedFrames: backlog.frames,
          limitBytes,
        },
      );
    }
    this.reapIfIdle(channel);
  }

  /** Forgets a channel nobody uses any more, after writing its counters. */
  private reapIfIdle(channel: Channel): void {
    if (!channel.isIdle || channel.closed) return;
    const { sessionId } = channel;
    this.serial
      .run(sessionId, async () => {
        await this.counterBook.write(channel);
        // Still idle? Leases are taken inside this same queue, so nothing can slip in between.
        if (channel.isIdle && !channel.closed) {
          channel.closed = true;
          this.forget(channel);
        }
      })
      .catch((error: unknown) => this.options.log.error({ err: error, sessionId }, 'cannot save session counters'));
  }

  /**
   * Closes the session's channel here, if any, with 4410 (it ended), writing its last counters.
   * Runs inside the session's serial queue.
   */
  private async closeEnded(sessionId: string): Promise<void> {
    const channel = this.hub.get(sessionId);
    if (!channel) return;
    channel.close(CloseCode.SessionEnded);
    try {
      await this.counterBook.write(channel);
    } catch (error) {
      // The session is FINISHED all the same; only its last second of counters is lost.
      this.options.log.error({ err: error, sessionId }, 'could not store the final counters of an ended session');
    } finally {
      this.forget(channel);
    }
  }

  /** Another instance ended the session: its sockets here close too. */
  private endedElsewhere(sessionId: string): void {
    this.serial
      .run(sessionId, () => this.closeEnded(sessionId))
      .catch((error: unknown) => this.options.log.error({ err: error, sessionId }, 'cannot close an ended session'));
  }

  /** After a Redis outage: the sessions live here that were ended meanwhile, closed. */
  private async closeFinished(): Promise<void> {
    const ids = [...this.hub].map((channel) => channel.sessionId);
    if (ids.length === 0) return;
    try {
      const finished = await this.options.db.session.findMany({
        where: { id: { in: ids }, status: 'FINISHED' },
        select: { id: true },
      });
      for (const { id } of finished) this.endedElsewhere(id);
    } catch (error) {
      this.options.log.warn({ err: error }, 'cannot check which live sessions ended while Redis was away');
    }
  }

  /** The channel is closed and out of use: out of the hub, its places and its feed given up. */
  private forget(channel: Channel): void {
    this.hub.remove(channel);
    this.cluster.forget(channel);
  }

  private startFlushing(): void {
    if (this.flushTimer) return;
    this.flushTimer = setInterval(() => this.flushAll(), FLUSH_INTERVAL_MS);
    this.flushTimer.unref();
  }

  private flushAll(): void {
    if (this.hub.size === 0) {
      clearInterval(this.flushTimer);
      this.flushTimer = undefined;
      return;
    }
    for (const channel of this.hub) {
      if (this.counterBook.hasUnwritten(channel)) {
        this.serial
          .run(channel.sessionId, () => this.counterBook.write(channel))
          .catch((error: unknown) =>
            this.options.log.warn({ err: error, sessionId: channel.sessionId }, 'cannot save session counters'),
          );
      }
    }
  }

  private emit<T extends SessionEventType>(
    type: T,
    sessionId: string,
    severity: 'INFO' | 'WARN',
    message: string,
    details: Extract<AppEvent, { type: T }>['details'],
    actor: Actor | null = null,
  ): void {
    this.options.events.emit(
      {
        type,
        source: 'sessions',
        severity,
        message: `session ${sessionId}: ${message}`,
        details,
      } as Extract<AppEvent, { type: T }>,
      actor,
    );
  }
}

type SessionEventType = Extract<AppEvent, { source: 'sessions' }>['type'];
