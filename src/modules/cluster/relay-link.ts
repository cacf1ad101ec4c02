import type { Logger } from '../../lib/logger.js';
import type { ClusterLink } from './link.js';

/** One publisher message as it crosses to the other instances. */
export interface RelayedFrame {
  /** The session's framesRelayed after this frame (its position). */
  seq: number;
  /** Epoch milliseconds, when the publisher's instance received it. */
  receivedAt: number;
  /** The session's bytesRelayed after this frame. */
  bytesRelayed: number;
  binary: boolean;
  payload: Buffer;
}

/** Who holds a place in a session, cluster-wide: its publisher (at most one) or a raw operator. */
export type RelayRole = 'publisher' | 'operator';

/** `unavailable`: Redis did not answer, so the cluster-wide count cannot be checked. */
export type ClaimResult = 'ok' | 'full' | 'unavailable';

/** seq, receivedAt, bytesRelayed (float64: exact to 2^53), flags. */
const HEADER_BYTES = 25;
const FLAG_BINARY = 1;
/**
 * A place is held this long without a refresh: the places of a killed instance free themselves
 * within it. Refreshed every second, so a live instance never loses one to a slow tick.
 */
const LEASE_TTL_MS = 5_000;
const REFRESH_MS = 1_000;
/**
 * Frames waiting to be written to Redis before new ones are dropped (at most once, as everything
 * on Redis): 16 MiB is half a second of 16 sessions at 64 KiB × 30 fps... or a stalled Redis.
 */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
/**
 * A session no other instance listens to has its frames kept off Redis, but for one every this
 * often: Redis' answer (how many heard it) says whether that is still so. An instance that starts
 * listening says so at once, so this bounds nothing but a lost announcement.
 */
const PROBE_MS = 1_000;

/**
 * Takes a place when fewer than ARGV[2] live ones are held (or refreshes one already held). Redis'
 * own clock (TIME) stamps the expiry, so instances' clocks need not agree. Expired places (a killed
 * instance's) are removed first: they never count.
 */
const CLAIM = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`;

/** The labels of the live places (the part of each name before its first `|`). */
const LIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
`;

/** Extends every place given (adding back any lost with a restarted Redis). */
const REFRESH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`;

/**
 * The live-session relay's share of the cluster link: publishers' frames to the instances whose
 * operators watch (one Redis channel per session, bytes as they are), `endSession` everywhere,
 * and the places (publisher, operators) counted across instances as leases in a Redis sorted set.
 * Frames are at most once like everything on Redis; places need Redis to be counted, so while it
 * is away new connections are refused (`unavailable`) and those already open keep going.
 */
export class RelayLink {
  /** Places this instance holds: key → members. Refreshed every second. */
  private readonly held = new Map<string, Set<string>>();
  private refresher: NodeJS.Timeout | undefined;
  private nextMember = 0;
  /** Sessions whose frames no other instance heard, since when (ms): not sent but for a probe. */
  private readonly unheard = new Map<string, number>();
  /**
   * Per session published here, how many times another instance said it listens: a stale "nobody
   * heard" answer must not silence it. Only sessions published here, so this is bounded by them.
   */
  private readonly listeningSaid = new Map<string, number>();
  /** Sessions this instance listens to (how many channels): said again when Redis is back. */
  private readonly listening = new Map<string, number>();

  constructor(
    private readonly link: ClusterLink,
    private readonly log: Logger,
  ) {}

  start(): () => void {
    this.refresher = setInterval(() => this.refresh(), REFRESH_MS);
    this.refresher.unref();
    const stops = [
      this.link.onResume(() => {
        this.refresh();
        // Whoever started listening while Redis was away could not say so: everyone says it again.
        this.unheard.clear();
        for (const sessionId of this.listening.keys()) this.link.publish('sessions', { listening: sessionId });
      }),
      this.link.on('sessions', (body) => {
        const listening = (body as { listening?: unknown } | null)?.listening;
        if (typeof listening !== 'string') return;
        const said = this.listeningSaid.get(listening);
        if (said === undefined) return; // not published here
        this.listeningSaid.set(listening, said + 1);
        this.unheard.delete(listening);
      }),
    ];
    return () => {
      clearInterval(this.refresher);
      for (const stop of stops) stop();
    };
  }

  /**
   * Sends one frame to the instances listening to the session. A session nobody else listens to
   * costs Redis one frame a second (a probe), not thirty: publishing answers how many heard it.
   */
  publishFrame(sessionId: string, frame: RelayedFrame): void {
    const since = this.unheard.get(sessionId);
    if (since !== undefined && Date.now() - since < PROBE_MS) return;
    let said = this.listeningSaid.get(sessionId);
    if (said === undefined) {
      said = 0;
      this.listeningSaid.set(sessionId, said);
    }
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header.writeDoubleBE(frame.seq, 0);
    header.writeDoubleBE(frame.receivedAt, 8);
    header.writeDoubleBE(frame.bytesRelayed, 16);
    header.writeUInt8(frame.binary ? FLAG_BINARY : 0, 24);
    void this.link
      .publishBinary(framesChannel(sessionId), [header, frame.payload], MAX_PENDING_BYTES)
      .then((heardBy) => {
        if (heardBy === null) return; // not sent: says nothing about who listens
        if (heardBy > 0) this.unheard.delete(sessionId);
        else if ((this.listeningSaid.get(sessionId) ?? 0) === said) this.unheard.set(sessionId, Date.now());
      });
  }

  /** The session is not live here any more: what was known of its listeners goes. */
  forget(sessionId: string): void {
    this.unheard.delete(sessionId);
    this.listeningSaid.delete(sessionId);
  }

  /**
   * Hears the frames other instances' publishers send to `sessionId`, in the order they sent them.
   * Resolves once Redis has confirmed; a publisher's instance that kept the session off Redis
   * (nobody listened) hears so at once and sends again from its next frame.
   */
  async onFrames(sessionId: string, handler: (frame: RelayedFrame) => void): Promise<() => void> {
    const stop = await this.link.onBinary(framesChannel(sessionId), (body) => {
      if (body.length < HEADER_BYTES) {
        this.log.warn({ sessionId }, 'a relayed frame without its header: ignored');
        return;
      }
      handler({
        seq: body.readDoubleBE(0),
        receivedAt: body.readDoubleBE(8),
        bytesRelayed: body.readDoubleBE(16),
        binary: (body.readUInt8(24) & FLAG_BINARY) !== 0,
        // A view on the message Redis delivered: no copy, whatever the number of operators here.
        payload: body.subarray(HEADER_BYTES),
      });
    });
    // The publisher's instance may be keeping the session's frames off Redis: now someone listens.
    this.link.publish('sessions', { listening: sessionId });
    this.listening.set(sessionId, (this.listening.get(sessionId) ?? 0) + 1);
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      stop();
      const left = (this.listening.get(sessionId) ?? 1) - 1;
      if (left > 0) this.listening.set(sessionId, left);
      else this.listening.delete(sessionId);
    };
  }

  /** Tells the other instances that the session ended (they close its sockets with 4410). */
  announceEnd(sessionId: string): void {
    this.link.publish('sessions', { ended: sessionId });
  }

  onEnded(handler: (sessionId: string) => void): () => void {
    return this.link.on('sessions', (body) => {
      const ended = (body as { ended?: unknown } | null)?.ended;
      if (typeof ended === 'string') handler(ended);
    });
  }

  /** Called each time Redis is back after a loss: what was announced meanwhile is gone. */
  onResume(listener: () => void): () => void {
    return this.link.onResume(listener);
  }

  /**
   * Takes one of the session's `max` places of `role` across the cluster, labelled (an operator's
   * user id; no `|`). Returns the place's name (for `release`) with the result; only `ok` holds one.
   */
  async claim(
    sessionId: string,
    role: RelayRole,
    max: number,
    label: string,
  ): Promise<{ result: ClaimResult; place: string }> {
    const key = placesKey(sessionId, role);
    const place = `${label}|${++this.nextMember}|${this.link.instanceId}`;
    try {
      const taken = await this.link.command((redis) =>
        redis.eval(CLAIM, 1, this.link.key(key), place, max, LEASE_TTL_MS),
      );
      if (taken !== 1) return { result: 'full', place };
    } catch (error) {
      this.log.warn({ err: error, sessionId }, 'cannot count the session’s connections in Redis');
      return { result: 'unavailable', place };
    }
    let places = this.held.get(key);
    if (!places) {
      places = new Set();
      this.held.set(key, places);
    }
    places.add(place);
    return { result: 'ok', place };
  }

  /** The labels of the session's places of `role` held now, on every instance. Rejects when Redis is away. */
  async labels(sessionId: string, role: RelayRole): Promise<string[]> {
    const names = (await this.link.command((redis) =>
      redis.eval(LIVE, 1, this.link.key(placesKey(sessionId, role))),
    )) as string[];
    return names.map((name) => name.slice(0, name.indexOf('|')));
  }

  /** Gives a place back (dropped if Redis is away: the lease expires by itself). */
  release(sessionId: string, role: RelayRole, place: string): void {
    const key = placesKey(sessionId, role);
    const places = this.held.get(key);
    if (!places?.delete(place)) return;
    if (places.size === 0) this.held.delete(key);
    this.link.command((redis) => redis.zrem(this.link.key(key), place)).catch(() => {});
  }

  private refresh(): void {
    for (const [key, places] of this.held) {
      this.link
        .command((redis) => redis.eval(REFRESH, 1, this.link.key(key), LEASE_TTL_MS, ...places))
        .catch(() => {
          // Redis away: the places expire there; `onResume` adds them back.
        });
    }
  }
}

function framesChannel(sessionId: string): string {
  return `frames:${sessionId}`;
}

function placesKey(sessionId: string, role: RelayRole): string {
  return `relay:${sessionId}:${role}`;
}
