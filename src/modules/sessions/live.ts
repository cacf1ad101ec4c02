import type { Db } from '../../db/client.js';
import type { Logger } from '../../lib/logger.js';
import type { Actor, AppEvent, EventBus } from '../events/index.js';
import { CloseCode } from './close-codes.js';
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
  private readonly serial = new KeyedSerializer();
  /** Counters as last written, per channel: a flush writes the difference. */
  private readonly flushed = new WeakMap<Channel, Counters>();
  private flushTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly options: LiveSessionsOptions) {
    this.hub = new Hub({ dropped: (channel, subscriber, backlog) => this.dropped(channel, subscriber, backlog) });
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
        const base: Counters = {
          framesRelayed: Number(row.framesRelayed),
          bytesRelayed: Number(row.bytesRelayed),
          operatorConnects: row.operatorConnects,
          operatorDisconnects: row.operatorDisconnects,
        };
        channel = this.hub.open(sessionId, base);
        this.flushed.set(channel, { ...base });
        this.startFlushing();
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
    const claimed = channel.claimPublisher(publisher);
    lease.release();
    if (claimed !== 'ok') return claimed === 'taken' ? 'taken' : 'gone';
    let started: boolean;
    try {
      started = await this.serial.run(channel.sessionId, () =>
        transition(this.options.db, channel.sessionId, 'start', this.options.instance),
      );
    } catch (error) {
      this.options.log.error({ err: error, sessionId: channel.sessionId }, 'cannot mark the session active');
      if (channel.releasePublisher(publisher)) this.reapIfIdle(channel);
      return 'unavailable';
    }
    if (!started) {
      // Finished by someone else between the lookup and now (endSession serialises with us, so
      // only a write from outside this process gets here).
      if (channel.releasePublisher(publisher)) this.reapIfIdle(channel);
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
    const { sessionId } = channel;
    this.emit('session.publisher_disconnected', sessionId, 'INFO', `publisher disconnected (${code})`, {
      sessionId,
      code,
    });
    this.serial
      .run(sessionId, async () => {
        await transition(this.options.db, sessionId, 'pause', this.options.instance);
        await this.flush(channel);
      })
      .catch((error: unknown) => this.options.log.error({ err: error, sessionId }, 'cannot mark the session waiting'))
      .finally(() => this.reapIfIdle(channel));
  }

  /** Adds a raw operator (counted against the limit) and records it in the session's operators. */
  /** `actor`: the token the operator connected with (the event log's "who"; `userId` is only a label). */
  async attachOperator(lease: Lease, subscriber: FrameSubscriber, actor: Actor | null = null): Promise<AttachResult> {
    const { channel } = lease;
    const joined = channel.join(subscriber, this.options.maxOperators);
    lease.release();
    if (joined !== 'ok') return joined === 'full' ? 'full' : 'gone';
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
      const channel = this.hub.get(sessionId);
      let counters: Counters | undefined;
      if (channel) {
        channel.close(CloseCode.SessionEnded);
        counters = channel.counters;
        try {
          await this.flush(channel);
        } catch (error) {
          // The session is FINISHED all the same; only its last second of counters is lost.
          this.options.log.error({ err: error, sessionId }, 'could not store the final counters of an ended session');
        } finally {
          this.hub.remove(channel);
        }
      }
      if (finished) {
        counters ??= await this.storedCounters(sessionId);
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

  /** Live counters while the session has a channel here, else the stored ones given. */
  counters(sessionId: string, stored: Counters): Counters {
    return this.hub.get(sessionId)?.counters ?? stored;
  }

  isConnected(sessionId: string, userId: string): boolean {
    return this.hub.get(sessionId)?.isConnected(userId) ?? false;
  }

  /**
   * Shutdown: closes everyone with 1001, ends every frame subscription, puts sessions that had a
   * publisher back to WAITING (a restart does not finish them) and writes the last counters.
   */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.flushTimer);
    this.flushTimer = undefined;
    for (const channel of [...this.hub]) {
      const { hadPublisher } = channel.close(CloseCode.GoingAway);
      const { sessionId } = channel;
      this.serial
        .run(sessionId, async () => {
          if (hadPublisher) await transition(this.options.db, sessionId, 'pause', this.options.instance);
          await this.flush(channel);
          this.hub.remove(channel);
        })
        .catch((error: unknown) => this.options.log.error({ err: error, sessionId }, 'cannot save the session'));
    }
    await this.serial.drain();
  }

  private detach(channel: Channel, subscriber: FrameSubscriber): boolean {
    if (!channel.leave(subscriber)) return false;
    this.reapIfIdle(channel);
    return true;
  }

  private dropped(channel: Channel, subscriber: FrameSubscriber, backlog: Backlog): void {
    const { sessionId } = channel;
    const limitBytes = this.options.maxBufferBytes;
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
        await this.flush(channel);
        // Still idle? Leases are taken inside this same queue, so nothing can slip in between.
        if (channel.isIdle && !channel.closed) {
          channel.closed = true;
          this.hub.remove(channel);
        }
      })
      .catch((error: unknown) => this.options.log.error({ err: error, sessionId }, 'cannot save session counters'));
  }

  /** Writes what the counters gained since the last write, as increments. Serialised per session. */
  private async flush(channel: Channel): Promise<void> {
    const done = this.flushed.get(channel);
    if (!done) return;
    const now = { ...channel.counters };
    const delta = {
      framesRelayed: now.framesRelayed - done.framesRelayed,
      bytesRelayed: now.bytesRelayed - done.bytesRelayed,
      operatorConnects: now.operatorConnects - done.operatorConnects,
      operatorDisconnects: now.operatorDisconnects - done.operatorDisconnects,
    };
    if (!delta.framesRelayed && !delta.bytesRelayed && !delta.operatorConnects && !delta.operatorDisconnects) return;
    await this.options.db.session.updateMany({
      where: { id: channel.sessionId },
      data: {
        framesRelayed: { increment: BigInt(delta.framesRelayed) },
        bytesRelayed: { increment: BigInt(delta.bytesRelayed) },
        operatorConnects: { increment: delta.operatorConnects },
        operatorDisconnects: { increment: delta.operatorDisconnects },
      },
    });
    this.flushed.set(channel, now);
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
      const done = this.flushed.get(channel);
      const c = channel.counters;
      if (
        done &&
        (done.framesRelayed !== c.framesRelayed ||
          done.operatorConnects !== c.operatorConnects ||
          done.operatorDisconnects !== c.operatorDisconnects)
      ) {
        this.serial
          .run(channel.sessionId, () => this.flush(channel))
          .catch((error: unknown) =>
            this.options.log.warn({ err: error, sessionId: channel.sessionId }, 'cannot save session counters'),
          );
      }
    }
  }

  private async storedCounters(sessionId: string): Promise<Counters> {
    const row = await this.options.db.session.findUnique({ where: { id: sessionId } });
    return {
      framesRelayed: Number(row?.framesRelayed ?? 0),
      bytesRelayed: Number(row?.bytesRelayed ?? 0),
      operatorConnects: row?.operatorConnects ?? 0,
      operatorDisconnects: row?.operatorDisconnects ?? 0,
    };
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
