import type { Db } from '../../db/client.js';
import type { Channel, Counters } from './hub.js';

/** The counter columns of a Session row (bigints for frames and bytes). */
export interface CounterColumns {
  framesRelayed: bigint;
  bytesRelayed: bigint;
  operatorConnects: number;
  operatorDisconnects: number;
}

export function countersOf(row: CounterColumns): Counters {
  return {
    framesRelayed: Number(row.framesRelayed),
    bytesRelayed: Number(row.bytesRelayed),
    operatorConnects: row.operatorConnects,
    operatorDisconnects: row.operatorDisconnects,
  };
}

const NAMES = ['framesRelayed', 'bytesRelayed', 'operatorConnects', 'operatorDisconnects'] as const;

/**
 * Each live channel's counters against what it has written: writes are increments (so instances
 * and restarts add up, never overwrite each other), reads are the stored row plus what is not
 * written yet. The caller serialises writes per session.
 */
export class CounterBook {
  /** Counters as last written (or being written), per channel. */
  private readonly written = new WeakMap<Channel, Counters>();

  constructor(private readonly db: Db) {}

  /** Starts keeping the books of a channel just opened from the stored counters. */
  track(channel: Channel): void {
    this.written.set(channel, { ...channel.counters });
  }

  /** Whether the channel has counts not written yet. */
  hasUnwritten(channel: Channel): boolean {
    const written = this.written.get(channel);
    return written !== undefined && NAMES.some((name) => written[name] !== channel.counters[name]);
  }

  /** Writes what the counters gained since the last write, as increments. */
  async write(channel: Channel): Promise<void> {
    const done = this.written.get(channel);
    if (!done || !this.hasUnwritten(channel)) return;
    const now = { ...channel.counters };
    // Recorded as written before the write, put back if it fails: a `live` read meanwhile may
    // miss this second's counts, but can never count them twice.
    this.written.set(channel, now);
    try {
      await this.db.session.updateMany({
        where: { id: channel.sessionId },
        data: {
          framesRelayed: { increment: BigInt(now.framesRelayed - done.framesRelayed) },
          bytesRelayed: { increment: BigInt(now.bytesRelayed - done.bytesRelayed) },
          operatorConnects: { increment: now.operatorConnects - done.operatorConnects },
          operatorDisconnects: { increment: now.operatorDisconnects - done.operatorDisconnects },
        },
      });
    } catch (error) {
      this.written.set(channel, done);
      throw error;
    }
  }

  /**
   * The stored counters given, plus what the channel has not written yet, and never less than
   * what it saw: its own counts, and the totals the last remote frame carried. On one process that
   * is exactly the live counters; with several, frames are exact on the publisher's instance and
   * within a second (the write interval) everywhere else.
   */
  live(channel: Channel | undefined, stored: Counters): Counters {
    if (!channel) return stored;
    const own = channel.counters;
    const written = this.written.get(channel) ?? own;
    const live = (name: keyof Counters) => Math.max(own[name], stored[name] + own[name] - written[name]);
    return {
      framesRelayed: Math.max(live('framesRelayed'), channel.remote?.framesRelayed ?? 0),
      bytesRelayed: Math.max(live('bytesRelayed'), channel.remote?.bytesRelayed ?? 0),
      operatorConnects: live('operatorConnects'),
      operatorDisconnects: live('operatorDisconnects'),
    };
  }

  /**
   * A publisher taking over on this instance counts on from the stored frames and bytes, which may
   * have grown since the channel opened (the previous publisher was on another instance). The
   * channel's own unwritten counts are kept.
   */
  async catchUp(channel: Channel): Promise<void> {
    const written = this.written.get(channel);
    if (!written) return;
    const stored = await this.stored(channel.sessionId);
    for (const name of ['framesRelayed', 'bytesRelayed'] as const) {
      const behind = stored[name] - written[name];
      if (behind <= 0) continue;
      channel.counters[name] += behind;
      written[name] += behind;
    }
  }

  async stored(sessionId: string): Promise<Counters> {
    const row = await this.db.session.findUnique({
      where: { id: sessionId },
      select: { framesRelayed: true, bytesRelayed: true, operatorConnects: true, operatorDisconnects: true },
    });
    return row ? countersOf(row) : { framesRelayed: 0, bytesRelayed: 0, operatorConnects: 0, operatorDisconnects: 0 };
  }
}
