import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../lib/logger.js';

export interface ClusterLinkOptions {
  /** REDIS_URL */
  url: string;
  /** This instance's name (INSTANCE_ID): messages it sent itself are not handed back to it. */
  instanceId: string;
  /**
   * What the instances of one deployment share (the database's location): channels are named
   * after it, so deployments (or test runs) on one Redis never hear each other.
   */
  deployment: string;
  log: Logger;
}

/** The longest any Redis command may take before it is given up as failed. */
const COMMAND_TIMEOUT_MS = 5_000;

type Handler = (body: unknown, from: string) => void;
type BinaryHandler = (body: Buffer, from: string) => void;

interface Envelope {
  from: string;
  body: unknown;
}

/**
 * The instances' live channel: Redis pub/sub, at most once. What must not be lost is in
 * PostgreSQL; a listener that may have missed messages while Redis was away hears `onResume` and
 * catches up from there.
 *
 * Two connections (a subscribed connection can do nothing else). Neither queues commands while
 * Redis is away: a message that cannot be sent now is dropped, not sent late and out of place.
 * ioredis reconnects with backoff and subscribes again by itself.
 */
export class ClusterLink {
  readonly instanceId: string;
  private readonly prefix: string;
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  private readonly handlers = new Map<string, Set<Handler>>();
  /** Channels whose messages are bytes (relayed frames), not JSON: `[from length u16][from][body]`. */
  private readonly binaryHandlers = new Map<string, Set<BinaryHandler>>();
  private readonly resumeListeners = new Set<() => void>();
  private readonly log: Logger;
  /** The subscriber was connected, then lost: the next `ready` is a resumption. */
  private lost = false;
  private stopped = false;
  private tag: Buffer | undefined;

  constructor(private readonly options: ClusterLinkOptions) {
    this.instanceId = options.instanceId;
    this.log = options.log;
    const digest = createHash('sha256').update(options.deployment).digest('hex').slice(0, 12);
    this.prefix = `streamgate:${digest}:`;
  }

  /**
   * Connects both connections. Redis being away at start is not fatal (PostgreSQL is the truth):
   * it says so, and connects when Redis comes. ioredis is loaded here, so that one process
   * without REDIS_URL never pays for it (~25 MB, ~70 ms).
   */
  async start(): Promise<void> {
    const { Redis } = await import('ioredis');
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // A Redis that accepts commands but never answers must not hold anything for ever (a
      // session's setup waits for its subscription, a connection for its place).
      commandTimeout: COMMAND_TIMEOUT_MS,
      // Back off to 2 s between attempts, for ever: Redis coming back must be noticed soon.
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000),
    };
    const { url } = this.options;
    const pub = new Redis(url, { ...common, connectionName: `streamgate-pub-${this.instanceId}` });
    const sub = new Redis(url, { ...common, connectionName: `streamgate-sub-${this.instanceId}` });
    this.pub = pub;
    this.sub = sub;
    // ioredis reports every failed attempt as an error event; one line per outage is enough.
    for (const client of [pub, sub]) client.on('error', () => {});
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.receive(channel.toString(), message));
    sub.on('close', () => {
      if (this.stopped || this.lost) return;
      this.lost = true;
      this.log.warn('Redis connection lost: live events from other instances pause until it is back');
    });
    sub.on('ready', () => {
      this.subscribeAll();
      if (!this.lost) return;
      this.lost = false;
      this.log.info('Redis connection back: catching up from the database');
      for (const listener of this.resumeListeners) listener();
    });
    const connect = async (client: Redis) => {
      try {
        await client.connect();
      } catch (error) {
        this.lost = true;
        this.log.warn({ err: error }, 'Redis unreachable at start: running alone until it answers');
      }
    };
    await Promise.all([connect(pub), connect(sub)]);
  }

  /** Sends `body` to every other instance's `channel` listeners; dropped when Redis is away. */
  publish(channel: string, body: unknown): void {
    if (this.stopped || this.pub?.status !== 'ready') return;
    const envelope: Envelope = { from: this.instanceId, body };
    this.pub.publish(this.prefix + channel, JSON.stringify(envelope)).catch(() => {
      // Lost with the connection: at most once. The close handler has said so.
    });
  }

  /**
   * Sends `parts` (concatenated: one copy) to every other instance's `onBinary(channel)` listeners.
   * Resolves to how many connections Redis handed it to; null when it was dropped: Redis away, or
   * more than `maxPendingBytes` already waiting to be written to it (a stalled Redis must not grow
   * this process without bound), or lost with the connection.
   */
  publishBinary(channel: string, parts: Buffer[], maxPendingBytes: number): Promise<number | null> {
    const pub = this.pub;
    if (this.stopped || pub?.status !== 'ready') return Promise.resolve(null);
    if ((pub.stream?.writableLength ?? 0) > maxPendingBytes) return Promise.resolve(null);
    const message = Buffer.concat([this.senderTag, ...parts]);
    return pub.publish(this.prefix + channel, message).catch(() => null);
  }

  /** Calls `handler` for every message another instance sends on `channel`; returns how to stop. */
  on(channel: string, handler: Handler): () => void {
    return this.listen(this.handlers, channel, handler).stop;
  }

  /**
   * As `on`, for `publishBinary` messages. Resolves once Redis has confirmed the subscription (at
   * once when Redis is away: it subscribes when it is back), so a caller knows from when on it hears.
   */
  async onBinary(channel: string, handler: BinaryHandler): Promise<() => void> {
    const { stop, subscribed } = this.listen(this.binaryHandlers, channel, handler);
    await subscribed;
    return stop;
  }

  /** Called each time Redis is back after a loss: whatever was sent meanwhile is gone. */
  onResume(listener: () => void): () => void {
    this.resumeListeners.add(listener);
    return () => this.resumeListeners.delete(listener);
  }

  /** Records this instance's heartbeat (a field of one hash; dropped when Redis is away). */
  announceSelf(id: string, body: { heartbeatAt: number } & Record<string, unknown>): void {
    if (this.stopped || this.pub?.status !== 'ready') return;
    this.pub.hset(`${this.prefix}instances`, id, JSON.stringify(body)).catch(() => {});
  }

  /** Every instance heard of within `maxAgeMs`; older entries are removed. */
  async instances(maxAgeMs: number): Promise<unknown[]> {
    const key = `${this.prefix}instances`;
    if (!this.pub) throw new Error('not connected to Redis');
    const all = await this.pub.hgetall(key);
    const now = Date.now();
    const alive: unknown[] = [];
    const gone: string[] = [];
    for (const [id, json] of Object.entries(all)) {
      try {
        const parsed = JSON.parse(json) as { heartbeatAt?: number };
        if (typeof parsed.heartbeatAt === 'number' && now - parsed.heartbeatAt <= maxAgeMs) {
          alive.push(parsed);
          continue;
        }
      } catch {
        // unreadable: as good as gone
      }
      gone.push(id);
    }
    if (gone.length) await this.pub.hdel(key, ...gone).catch(() => {});
    return alive;
  }

  /** Removes an instance from the list (at shutdown: it is gone at once, not after a timeout). */
  async forget(id: string): Promise<void> {
    if (this.pub?.status !== 'ready') return;
    await this.pub.hdel(`${this.prefix}instances`, id).catch(() => {});
  }

  /** The Redis key of `name` in this deployment's namespace. */
  key(name: string): string {
    return this.prefix + name;
  }

  /** Runs `command` on the publishing connection; rejects at once when Redis is away. */
  command<T>(command: (redis: Redis) => Promise<T>): Promise<T> {
    if (this.stopped || this.pub?.status !== 'ready') return Promise.reject(new Error('Redis is not connected'));
    return command(this.pub);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.handlers.clear();
    this.binaryHandlers.clear();
    this.resumeListeners.clear();
    const clients = [this.pub, this.sub].filter((c): c is Redis => c !== undefined);
    await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
  }

  /** The `[from length][from]` head of this instance's binary messages, encoded once. */
  private get senderTag(): Buffer {
    this.tag ??= (() => {
      const from = Buffer.from(this.instanceId, 'utf8');
      const length = Buffer.alloc(2);
      length.writeUInt16BE(from.length);
      return Buffer.concat([length, from]);
    })();
    return this.tag;
  }

  private listen<H>(
    registry: Map<string, Set<H>>,
    channel: string,
    handler: H,
  ): { stop: () => void; subscribed: Promise<void> } {
    let set = registry.get(channel);
    let subscribed = Promise.resolve();
    if (!set) {
      set = new Set();
      registry.set(channel, set);
      // When Redis is away, `ready` subscribes to everything listened to.
      if (!this.stopped && this.sub?.status === 'ready') {
        subscribed = this.sub.subscribe(this.prefix + channel).then(
          () => {},
          (error: unknown) =>
            this.log.debug({ err: error }, 'Redis subscribe failed; again when the connection is back'),
        );
      }
    }
    set.add(handler);
    const listeners = set;
    const stop = () => {
      listeners.delete(handler);
      if (listeners.size > 0 || registry.get(channel) !== listeners) return;
      registry.delete(channel);
      // Per-session channels come and go: stop hearing one nobody listens to.
      if (!this.stopped && this.sub?.status === 'ready') this.sub.unsubscribe(this.prefix + channel).catch(() => {});
    };
    return { stop, subscribed };
  }

  /** Subscribes to every channel listened to, when connected (else on the next `ready`). */
  private subscribeAll(): void {
    if (this.stopped || this.sub?.status !== 'ready') return;
    const channels = [...this.handlers.keys(), ...this.binaryHandlers.keys()].map((channel) => this.prefix + channel);
    if (channels.length === 0) return;
    this.sub.subscribe(...channels).catch((error: unknown) => {
      this.log.debug({ err: error }, 'Redis subscribe failed; again when the connection is back');
    });
  }

  private receive(channel: string, message: Buffer): void {
    const binary = this.binaryHandlers.get(channel.slice(this.prefix.length));
    if (binary) {
      if (message.length < 2) return;
      const end = 2 + message.readUInt16BE(0);
      const from = message.toString('utf8', 2, end);
      if (from === this.instanceId) return;
      const body = message.subarray(end);
      for (const handler of binary) {
        try {
          handler(body, from);
        } catch (error) {
          this.log.error({ err: error, channel }, 'a cluster message handler failed');
        }
      }
      return;
    }
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message.toString('utf8')) as Envelope;
    } catch {
      this.log.warn({ channel }, 'unreadable message on a cluster channel: ignored');
      return;
    }
    if (envelope.from === this.instanceId) return;
    const handlers = this.handlers.get(channel.slice(this.prefix.length));
    for (const handler of handlers ?? []) {
      try {
        handler(envelope.body, envelope.from);
      } catch (error) {
        this.log.error({ err: error, channel }, 'a cluster message handler failed');
      }
    }
  }
}
