import { BoundedStream, type Overflow } from '../../lib/bounded-stream.js';
import type { HealthChange, HealthSubjectKind } from './types.js';

export type HealthStreamItem = HealthChange | Overflow;

/**
 * Live health transitions to every subscriber, each a bounded stream (lib/bounded-stream). A
 * subscriber that lets `limit` changes pile up (a stalled client) gets an Overflow instead of
 * further changes and then its stream ends: silently dropping a transition would leave its view
 * of the subjects wrong, and a clear end tells it to re-read the state and subscribe again (so
 * what was queued is dropped).
 */
export class ChangeHub {
  private readonly subscribers = new Map<BoundedStream<HealthChange>, ReadonlySet<HealthSubjectKind> | null>();
  private closed = false;

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.subscribers.size;
  }

  /** Changes of the given kinds (all kinds when null or empty), until returned or closed. */
  subscribe(kinds: readonly HealthSubjectKind[] | null | undefined): AsyncIterableIterator<HealthStreamItem> {
    const stream = new BoundedStream<HealthChange>({ maxItems: this.limit }, (s) => this.subscribers.delete(s));
    if (this.closed) stream.end();
    else this.subscribers.set(stream, kinds?.length ? new Set(kinds) : null);
    return stream;
  }

  publish(change: HealthChange): void {
    for (const [stream, kinds] of this.subscribers) {
      if (kinds && !kinds.has(change.subjectKind)) continue;
      if (stream.push(change)) continue;
      stream.overflow({ dropQueued: true });
      this.subscribers.delete(stream);
    }
  }

  /** Ends every stream (shutdown). */
  close(): void {
    this.closed = true;
    for (const stream of this.subscribers.keys()) stream.end();
    this.subscribers.clear();
  }
}
