import type { Db } from '../../db/client.js';
import { isRecordNotFound, isUniqueViolation } from '../../db/errors.js';
import { conflict } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { isUuid } from '../../lib/uuid.js';
import { parseInput } from '../../lib/validate.js';
import type { Actor, EventBus } from '../events/index.js';
import { Authenticator, type AuthResult } from './authenticate.js';
import { OpenConnections } from './connections.js';
import { createTokenSchema } from './input.js';
import type { Role } from './roles.js';
import { generateToken, hashToken, type Principal, type TokenVerifier } from './tokens.js';

/** A stored token as the API shows it: never its secret, never its hash. */
export interface ApiTokenRow {
  id: string;
  name: string;
  role: Role;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
}

const TOKEN_COLUMNS = {
  id: true,
  name: true,
  role: true,
  createdAt: true,
  expiresAt: true,
  lastUsedAt: true,
} as const;

export interface AuthServiceOptions {
  db: Db;
  log: Logger;
  events: Pick<EventBus, 'emit' | 'record'>;
  tokens: TokenVerifier;
  /** Invalid tokens one address may present per minute (AUTH_FAILURES_PER_MINUTE). */
  failuresPerMinute: number;
  /** How often open connections' tokens are checked again (expiry, revocation elsewhere); default 10 s. */
  recheckMs?: number;
  /** How often remembered token uses are written (`lastUsedAt`); default 5 s. */
  usageFlushMs?: number;
}

/**
 * Who is asking, and the tokens that say so: the one `authenticate()` of every surface, the open
 * connections each token holds, and token management (list, create, revoke).
 */
export class AuthService {
  readonly connections = new OpenConnections();
  private readonly authenticator: Authenticator;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly options: AuthServiceOptions) {
    this.authenticator = new Authenticator({
      tokens: options.tokens,
      events: options.events,
      failuresPerMinute: options.failuresPerMinute,
    });
  }

  async authenticate(token: string | null, address: string | undefined): Promise<AuthResult> {
    const result = await this.authenticator.authenticate(token, address);
    if (result.kind === 'principal') this.options.tokens.touch(result.principal);
    return result;
  }

  /** Registers a long-lived connection of `principal`: `close` runs when its token is revoked or expires. */
  watch(principal: Principal, close: () => void): () => void {
    return this.connections.watch(principal, close);
  }

  listTokens(): Promise<ApiTokenRow[]> {
    return this.options.db.apiToken.findMany({ select: TOKEN_COLUMNS, orderBy: { createdAt: 'asc' } }) as Promise<
      ApiTokenRow[]
    >;
  }

  /** A new token: its secret is in the answer and nowhere else (only its SHA-256 is stored). */
  async createToken(
    input: { name: unknown; role: unknown; expiresAt?: unknown },
    actor: Actor,
  ): Promise<{ token: string; apiToken: ApiTokenRow }> {
    const { name, role, expiresAt } = parseInput(createTokenSchema, input);
    const token = generateToken();
    let apiToken: ApiTokenRow;
    try {
      apiToken = (await this.options.db.apiToken.create({
        data: { name, role, expiresAt: expiresAt ?? null, tokenHash: hashToken(token) },
        select: TOKEN_COLUMNS,
      })) as ApiTokenRow;
    } catch (error) {
      if (isUniqueViolation(error, 'ApiToken', 'name')) throw conflict(`a token named "${name}" exists`, 'name');
      throw error;
    }
    await this.options.events.record(
      {
        type: 'auth.token_created',
        alwaysStored: true,
        source: 'auth',
        severity: 'INFO',
        message: `${role} token "${name}" created${expiresAt ? `, expires ${expiresAt.toISOString()}` : ''}`,
        details: { tokenId: apiToken.id, name, role, expiresAt: expiresAt?.toISOString() ?? null },
      },
      actor,
    );
    return { token, apiToken };
  }

  /**
   * Deletes a token: refused from the next request on this instance, within 10 s on others; its
   * open graphql-ws and relay connections here are closed with 4403. Null for an unknown id.
   */
  async revokeToken(id: string, actor: Actor): Promise<ApiTokenRow | null> {
    if (!isUuid(id)) return null;
    let row: Awaited<ReturnType<Db['apiToken']['delete']>>;
    try {
      row = await this.options.db.apiToken.delete({ where: { id } });
    } catch (error) {
      if (isRecordNotFound(error)) return null;
      throw error;
    }
    this.options.tokens.forget(row.tokenHash);
    const closedConnections = this.connections.closeToken(row.id);
    await this.options.events.record(
      {
        type: 'auth.token_revoked',
        alwaysStored: true,
        source: 'auth',
        severity: 'INFO',
        message: `${row.role} token "${row.name}" revoked${closedConnections ? ` (${closedConnections} connection(s) closed)` : ''}`,
        details: { tokenId: row.id, name: row.name, role: row.role, closedConnections },
      },
      actor,
    );
    const { tokenHash: _secretHash, ...shown } = row;
    return shown as ApiTokenRow;
  }

  /** Starts the batched `lastUsedAt` writes and the re-check of open connections' tokens. */
  start(): void {
    const { recheckMs = 10_000, usageFlushMs = 5_000 } = this.options;
    this.timers = [
      setInterval(() => void this.flushUsage(), usageFlushMs).unref(),
      setInterval(() => void this.recheckConnections(), recheckMs).unref(),
    ];
  }

  /** Stops the timers and writes the uses not yet written. */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.flushUsage();
  }

  /** Closes the connections of tokens that expired or were revoked (here or on another instance). */
  async recheckConnections(): Promise<void> {
    const ids = this.connections.tokenIds();
    if (ids.length === 0) return;
    try {
      const rows = await this.options.db.apiToken.findMany({
        where: { id: { in: ids } },
        select: { id: true, expiresAt: true },
      });
      const now = Date.now();
      const valid = new Set(rows.filter((r) => !r.expiresAt || r.expiresAt.getTime() > now).map((r) => r.id));
      for (const id of ids) if (!valid.has(id)) this.connections.closeToken(id);
    } catch (error) {
      // The database is away: connections stay as they are until it can tell.
      this.options.log.warn({ err: error }, 'cannot re-check the tokens of open connections');
    }
  }

  /** Writes the remembered token uses now (the timer does it every few seconds). */
  async flushUsage(): Promise<void> {
    try {
      await this.options.tokens.flushUsage();
    } catch (error) {
      this.options.log.warn({ err: error }, 'cannot store when tokens were last used; retrying');
    }
  }
}
