import { decodeCursor, encodeCursor } from '../../lib/pagination.js';

/**
 * Event log cursors carry a direction and a position (a `seq` of the stored log):
 * - `older-than P`: what the edges of a newest-first `events` page carry; `after:` it gives the
 *   next, older page.
 * - `newer-than P`: the catch-up cursor of an entry (`EventLogEntry.cursor`); `after:` it gives the
 *   entries stored after P, oldest first, whose edges carry catch-up cursors again.
 * Both are opaque to clients: base64url of `event:<o|n>:<seq>`.
 */
export type EventCursor = { direction: 'older' | 'newer'; position: bigint };

const PREFIX = 'event';
const KEY = /^([on]):(0|[1-9]\d{0,18})$/;
// seq is a BIGSERIAL: positions outside a signed 64-bit integer cannot come from us.
const MAX_POSITION = 2n ** 63n - 1n;

export const olderThan = (position: bigint) => encodeCursor(PREFIX, `o:${position}`);
export const newerThan = (position: bigint) => encodeCursor(PREFIX, `n:${position}`);

/** Parses an `after:` argument; anything we did not hand out is BAD_USER_INPUT. */
export function parseEventCursor(cursor: string): EventCursor {
  const key = decodeCursor(PREFIX, cursor, (k) => {
    const match = KEY.exec(k);
    return match !== null && BigInt(match[2] ?? '') <= MAX_POSITION;
  });
  const [direction, position] = key.split(':') as [string, string];
  return { direction: direction === 'o' ? 'older' : 'newer', position: BigInt(position) };
}
