import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Db } from '../../db/client.js';
import { isRole, type Role } from './roles.js';

export interface Principal {
  /** Token id, or `env` for ADMIN_TOKEN. Recorded as "who" in the event log. */
  id: string;
  name: string;
  role: Role;
}

const BOOTSTRAP_TOKEN_NAME = 'bootstrap-admin';

/** The token store could not be read (the database is down): neither yes nor no. */
export class TokenCheckUnavailableError extends Error {
  override name = 'TokenCheckUnavailableError';
}

/** The shape of generateToken()'s tokens: `sg_` and 32 random bytes in base64url. */
const GENERATED_TOKEN = /^sg_[A-Za-z0-9_-]{43}$/;

/** `sg_` marks StreamGate tokens so secret scanners and humans can recognise a leaked one. */
export function generateToken(): string {
  return `sg_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The token from `Authorization: Bearer <token>` (scheme case-insensitive), or null. */
export function bearerToken(header: string | null | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1] ?? null;
}

/** How long a lookup's answer is trusted: a token revoked on another instance stops working within it. */
const CACHE_MS = 10_000;

/**
 * Checks bearer tokens against ADMIN_TOKEN and the stored token hashes. Results are cached for a
 * few seconds (never past a token's expiry) so that a busy passthrough does not cost a database
 * query per request. Uses of stored tokens are remembered and written in batches (`flushUsage`).
 */
export class TokenVerifier {
  private readonly envHash: Buffer | undefined;
  private readonly cache = new LRUCache<string, { principal: Principal | null }>({ max: 10_000, ttl: CACHE_MS });
  private used = new Map<string, Date>();

  constructor(
    private readonly db: Db,
    adminToken: string | undefined,
  ) {
    this.envHash = adminToken ? Buffer.from(hashToken(adminToken), 'hex') : undefined;
  }

  /**
   * What is known of a token without a lookup: its principal, null when it cannot be valid (or is
   * cached as unknown), undefined when only the token store can tell.
   */
  known(token: string | null): Principal | null | undefined {
    if (!token || token.length > 512) return null;
    const hash = hashToken(token);
    if (this.envHash && timingSafeEqual(this.envHash, Buffer.from(hash, 'hex'))) {
      return { id: 'env', name: 'ADMIN_TOKEN', role: 'admin' };
    }
    // Stored tokens are all generateToken()'s: anything else cannot be one, and costs no lookup.
    if (!GENERATED_TOKEN.test(token)) return null;
    return this.cache.get(hash)?.principal;
  }

  async verify(token: string | null): Promise<Principal | null> {
    const known = this.known(token);
    if (known !== undefined || !token) return known ?? null;
    const hash = hashToken(token);
    // Lookup by the hash of a 256-bit random token: equality on the hash leaks nothing useful.
    let row: { id: string; name: string; role: string; expiresAt: Date | null } | null;
    try {
      row = await this.db.apiToken.findUnique({
        where: { tokenHash: hash },
        select: { id: true, name: true, role: true, expiresAt: true },
      });
    } catch (error) {
      throw new TokenCheckUnavailableError('the token store cannot be read right now', { cause: error });
    }
    const msLeft = row?.expiresAt ? row.expiresAt.getTime() - Date.now() : CACHE_MS;
    // A stored role that is not one of the three is no role at all: refused, never promoted.
    const principal = row && isRole(row.role) && msLeft > 0 ? { id: row.id, name: row.name, role: row.role } : null;
    this.cache.set(hash, { principal }, { ttl: Math.max(1, Math.min(CACHE_MS, msLeft)) });
    return principal;
  }

  /** Tokens changed elsewhere (another instance): every token is looked up again. */
  clear(): void {
    this.cache.clear();
  }

  /** A revoked token: the next request with it is looked up again (and refused). */
  forget(tokenHash: string): void {
    this.cache.delete(tokenHash);
  }

  /** Remembers that a stored token was used now; written by the next flushUsage(). */
  touch(principal: Principal): void {
    if (principal.id !== 'env') this.used.set(principal.id, new Date());
  }

  /** Writes the remembered uses in one statement (`lastUsedAt`); a failed write is retried next time. */
  async flushUsage(): Promise<void> {
    if (this.used.size === 0) return;
    const batch = this.used;
    this.used = new Map();
    const ids = [...batch.keys()];
    const at = [...batch.values()].map((d) => d.toISOString());
    try {
      await this.db.$executeRaw`
        UPDATE "ApiToken" AS t SET "lastUsedAt" = GREATEST(t."lastUsedAt", v.at)
        FROM unnest(${ids}::uuid[], ${at}::timestamptz[]) AS v(id, at)
        WHERE t.id = v.id`;
    } catch (error) {
      for (const [id, when] of batch) if (!this.used.has(id)) this.used.set(id, when);
      throw error;
    }
  }
}

/**
 * On first start without ADMIN_TOKEN: create an admin token, store only its hash, and return it
 * so the caller can print it once. Returns null when a token exists already or ADMIN_TOKEN is set.
 */
export async function bootstrapAdminToken(
  db: Db,
  adminToken: string | undefined,
): Promise<{ token: string; id: string; name: string } | null> {
  if (adminToken) return null;
  const token = generateToken();
  // One INSERT … ON CONFLICT DO NOTHING: two instances starting together on one database cannot
  // both mint a token (the one that lost gets no row back).
  const [row] = await db.apiToken.createManyAndReturn({
    data: [{ name: BOOTSTRAP_TOKEN_NAME, tokenHash: hashToken(token), role: 'admin' }],
    skipDuplicates: true,
    select: { id: true, name: true },
  });
  return row ? { token, ...row } : null;
}
