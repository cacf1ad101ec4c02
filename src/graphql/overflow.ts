import { Overflow } from '../lib/bounded-stream.js';
import { subscriberTooSlow } from '../lib/errors.js';

/**
 * The one place a live stream's Overflow becomes SUBSCRIBER_TOO_SLOW. Used as a subscription's
 * `resolve`: the overflow, its stream's last value, is thrown, so the client gets one error result
 * and then `complete`, the same over graphql-ws and SSE. `advice` tells it how to resume.
 */
export function unlessOverflow<T>(item: T | Overflow, field: string, advice: string): T {
  if (!(item instanceof Overflow)) return item;
  const { items, weight } = item.queued;
  const queued = weight > 0 ? `${items} items, ${weight} bytes` : `${items} items`;
  throw subscriberTooSlow(
    `${field}: this subscription fell behind (${queued} queued; limit ${item.limit}) and was ended; ${advice}`,
    { limit: item.limit },
  );
}
