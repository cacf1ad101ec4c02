import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 256 random bits, URL-safe (it travels as `?key=`). */
export function generateStreamKey(): string {
  return randomBytes(32).toString('base64url');
}

export function hashStreamKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Constant-time comparison of a presented key with the stored hash. */
export function streamKeyMatches(key: string, storedHash: string): boolean {
  const presented = createHash('sha256').update(key).digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

/** The publisher is the user whose id is the session's client id (UUIDs compare case-insensitively). */
export function isPublisherId(userId: string, clientId: string): boolean {
  return userId.toLowerCase() === clientId.toLowerCase();
}

/** `PUBLIC_URL` (http/https, any path prefix) turned into the session's ws/wss relay URL. */
export function streamUrl(publicUrl: string, sessionId: string, clientId: string): string {
  const url = new URL(publicUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/ws/stream/${sessionId}/${clientId}`;
  url.search = '';
  url.hash = '';
  return url.toString();
}
