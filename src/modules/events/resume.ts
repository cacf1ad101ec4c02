import { Overflow } from '../../lib/bounded-stream.js';
import { badInput } from '../../lib/errors.js';
import type { Page } from '../../lib/pagination.js';
import { newerThan, parseEventCursor } from './cursor.js';
import type { EventFilter } from './live.js';
import type { EventsArgs } from './query.js';
import { atLeast, type EventLogEntry, SEVERITIES } from './types.js';

/** Rows per catch-up read. */
const PAGE = 100;

export interface ResumeSource {
  subscribe(filter: EventFilter): AsyncIterableIterator<EventLogEntry | Overflow>;
  list(args: EventsArgs): Promise<Page<EventLogEntry>>;
}

/**
 * `eventLogged(after: <cursor>)`: what was stored after the cursor (oldest first, with the same
 * filter), then the live stream, with no gap and no entry twice. The live subscription starts
 * before the first read, so nothing published meanwhile is missed; a stored entry it delivers that
 * the reads already returned is skipped. Entries that were never stored (below
 * EVENT_LOG_MIN_SEVERITY) cannot be replayed: what happened of them before the call is gone.
 */
export function resumeAfter(
  source: ResumeSource,
  filter: EventFilter,
  after: string,
): AsyncIterableIterator<EventLogEntry | Overflow> {
  const cursor = parseEventCursor(after);
  if (cursor.direction !== 'newer') {
    throw badInput('after: must be a catch-up cursor (`EventLogEntry.cursor`), not a page cursor of `events`', 'after');
  }
  const live = source.subscribe(filter);
  const { minSeverity } = filter;
  const severity = minSeverity ? SEVERITIES.filter((s) => atLeast(s, minSeverity)) : null;
  let replayedUpTo = cursor.position;
  let replaying = true;
  const replayed: EventLogEntry[] = [];

  // A hand-written iterator, not an async generator: return() must end the live subscription at
  // once, even while next() waits for an entry (a generator would only see return() after that).
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      while (replaying && replayed.length === 0) {
        const page = await source.list({
          after: newerThan(replayedUpTo),
          first: PAGE,
          severity,
          source: filter.source,
        });
        for (const { node } of page.edges) replayed.push(node);
        replayedUpTo = replayed.at(-1)?.position ?? replayedUpTo;
        replaying = page.pageInfo.hasNextPage;
      }
      const next = replayed.shift();
      if (next) return { value: next, done: false };
      for (;;) {
        const item = await live.next();
        // A stored entry the replay already returned comes once only.
        if (!item.done && !(item.value instanceof Overflow) && isStored(item.value)) {
          if (item.value.position <= replayedUpTo) continue;
        }
        return item;
      }
    },
    async return() {
      replaying = false;
      replayed.length = 0;
      await live.return?.();
      return { value: undefined, done: true };
    },
  };
}

/** Stored entries carry their seq as id; the others a `live-…` one. */
function isStored(entry: EventLogEntry): boolean {
  return entry.id === entry.position.toString();
}
