import { z } from 'zod';
import { isUuid } from '../../lib/uuid.js';

export const createSessionSchema = z.object({ clientId: z.uuid('must be a UUID') });

/**
 * Operator user ids as they appear in the path: letters, digits and `._~@+:-`, up to 128
 * characters (e-mail addresses and UUIDs fit). Anything else is a malformed request (4400).
 */
const USER_ID = /^[A-Za-z0-9][A-Za-z0-9._~@+:-]{0,127}$/;
const STREAM_PATH = /^\/ws\/stream\/([^/]+)\/([^/]+)$/;

export interface StreamTarget {
  /** Lower-case UUID. */
  sessionId: string;
  userId: string;
  /** `?key=`: the publisher's stream key. */
  key: string | null;
  /** `?access_token=`: an operator's bearer token (the `Authorization` header is preferred). */
  accessToken: string | null;
}

/** `/ws/stream/{sessionId}/{userId}[?key=…|?access_token=…]`, or null when malformed. */
export function parseStreamTarget(url: string): StreamTarget | null {
  let parsed: URL;
  try {
    parsed = new URL(url, 'http://relay.invalid');
  } catch {
    return null;
  }
  const match = STREAM_PATH.exec(parsed.pathname);
  if (!match) return null;
  let sessionId: string;
  let userId: string;
  try {
    sessionId = decodeURIComponent(match[1] ?? '');
    userId = decodeURIComponent(match[2] ?? '');
  } catch {
    return null;
  }
  if (!isUuid(sessionId) || !USER_ID.test(userId)) return null;
  return {
    sessionId: sessionId.toLowerCase(),
    userId,
    key: parsed.searchParams.get('key') || null,
    accessToken: parsed.searchParams.get('access_token') || null,
  };
}
