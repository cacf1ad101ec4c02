import type { ClaimResult, RelayLink, RelayRole } from '../cluster/index.js';
import { type Channel, Frame } from './hub.js';

/** How long a `connectedOperators` answer is reused. */
const CONNECTED_FRESH_MS = 250;

interface Place {
  role: RelayRole;
  name: string;
}

/**
 * What a channel needs from the other instances (REDIS_URL): its frames sent to them when its
 * publisher is here, theirs heard while it is not, and every publisher and raw operator counted
 * cluster-wide (one publisher, SESSION_MAX_OPERATORS operators). On one process every method is
 * a no-op and every claim succeeds: the hub's own checks are the whole truth there.
 */
export class ClusterRelay {
  private readonly places = new Map<Channel, Map<object, Place>>();
  /** Channels hearing remote frames: how to stop. */
  private readonly feeds = new Map<Channel, Promise<() => void>>();
  /** Recent answers of `connectedOperators`, per session. */
  private readonly connected = new Map<string, { at: number; users: Promise<Set<string> | null> }>();

  constructor(
    private readonly link: RelayLink | null,
    private readonly maxOperators: number,
  ) {}

  get clustered(): boolean {
    return this.link !== null;
  }

  /**
   * Takes a cluster-wide place for `holder` (a publisher, or an operator socket) and records it
   * under the channel; `give` hands it back. GraphQL subscribers take none: they are not counted.
   */
  async claim(channel: Channel, holder: object, role: RelayRole, userId = ''): Promise<ClaimResult> {
    if (!this.link) return 'ok';
    const max = role === 'publisher' ? 1 : this.maxOperators;
    const { result, place } = await this.link.claim(channel.sessionId, role, max, userId);
    if (result !== 'ok') return result;
    let held = this.places.get(channel);
    if (!held) {
      held = new Map();
      this.places.set(channel, held);
    }
    held.set(holder, { role, name: place });
    return 'ok';
  }

  give(channel: Channel, holder: object): void {
    const held = this.places.get(channel);
    const place = held?.get(holder);
    if (!held || !place) return;
    held.delete(holder);
    if (held.size === 0) this.places.delete(channel);
    this.link?.release(channel.sessionId, place.role, place.name);
  }

  /** The channel is closed and out of use: its places are free, its feed stops, its listeners are forgotten. */
  forget(channel: Channel): void {
    for (const holder of [...(this.places.get(channel)?.keys() ?? [])]) this.give(channel, holder);
    void this.follow(channel);
    this.link?.forget(channel.sessionId);
  }

  /** A frame this instance's publisher sent, for the other instances' operators. */
  publish(channel: Channel, frame: Frame): void {
    this.link?.publishFrame(channel.sessionId, {
      seq: frame.seq,
      receivedAt: frame.receivedAt,
      bytesRelayed: channel.counters.bytesRelayed,
      binary: frame.binary,
      payload: frame.payload,
    });
  }

  /**
   * Hears the frames of the session's publisher on another instance while the channel is open and
   * its publisher is not here (a publisher here relays directly, and its own frames would only
   * come back). Call after any change of either; resolves once it hears (or has stopped).
   */
  async follow(channel: Channel): Promise<void> {
    const link = this.link;
    if (!link) return;
    const wanted = !channel.closed && !channel.hasPublisher;
    const feed = this.feeds.get(channel);
    if (wanted && !feed) {
      const started = link.onFrames(channel.sessionId, (f) =>
        channel.relay(new Frame(channel.sessionId, f.seq, f.receivedAt, f.payload, f.binary), f.bytesRelayed),
      );
      this.feeds.set(channel, started);
      await started;
    } else if (!wanted && feed) {
      this.feeds.delete(channel);
      (await feed)();
    } else {
      await feed;
    }
  }

  /**
   * The user ids with a raw operator socket on any instance (null on one process, or when Redis
   * cannot say). One Redis read per session per 250 ms, however many operators a query lists.
   */
  connectedOperators(sessionId: string): Promise<Set<string> | null> {
    const link = this.link;
    if (!link) return Promise.resolve(null);
    const now = Date.now();
    const cached = this.connected.get(sessionId);
    if (cached && now - cached.at < CONNECTED_FRESH_MS) return cached.users;
    if (this.connected.size >= 1_000) this.connected.clear();
    const users = link.labels(sessionId, 'operator').then(
      (labels) => new Set(labels),
      () => null,
    );
    this.connected.set(sessionId, { at: now, users });
    return users;
  }

  /** Tells the other instances the session ended. */
  announceEnd(sessionId: string): void {
    this.link?.announceEnd(sessionId);
  }

  /** `handler` hears of sessions ended elsewhere, and of Redis coming back (anything may have ended). */
  watch(handlers: { ended: (sessionId: string) => void; resumed: () => void }): () => void {
    const link = this.link;
    if (!link) return () => {};
    const stops = [link.onEnded(handlers.ended), link.onResume(handlers.resumed)];
    return () => {
      for (const stop of stops) stop();
    };
  }
}
