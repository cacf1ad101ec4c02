import { BoundedStream } from '../../lib/bounded-stream.js';
import { atLeast, type EventLogEntry, type Severity } from './types.js';

export interface EventFilter {
  minSeverity?: Severity | null;
  source?: string | null;
}

export function matches(filter: EventFilter, entry: EventLogEntry): boolean {
  const { minSeverity, source } = filter;
  return (!minSeverity || atLeast(entry.severity, minSeverity)) && (!source || entry.source === source);
}

/**
 * One live subscriber: a bounded stream (lib/bounded-stream) of the entries its filter matches. A
 * consumer that does not keep up gets an Overflow and the end, rather than being buffered without
 * end; what was queued is dropped, since it resumes from its last entry's cursor anyway.
 */
export class LiveSubscription extends BoundedStream<EventLogEntry> {
  constructor(
    private readonly filter: EventFilter,
    limit: number,
    onEnd: (sub: LiveSubscription) => void,
  ) {
    super({ maxItems: limit }, (stream) => onEnd(stream as unknown as LiveSubscription));
  }

  /** Offers a published entry; false once this subscriber overflowed (the bus lets it go). */
  publish(entry: EventLogEntry): boolean {
    if (!matches(this.filter, entry) || this.push(entry)) return true;
    this.overflow({ dropQueued: true });
    return false;
  }
}
