import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { EventBus } from '../events/index.js';
import { type Principal, TokenCheckUnavailableError, type TokenVerifier } from './tokens.js';

/** What checking a caller's token came to; every surface maps it to its own answer. */
export type AuthResult =
  | { kind: 'principal'; principal: Principal }
  /** No token at all. */
  | { kind: 'missing' }
  /** A token that is not valid. */
  | { kind: 'invalid' }
  /** The token store cannot be read right now (the database is down): neither yes nor no. */
  | { kind: 'unavailable' }
  /** Too many invalid tokens from this address lately: not even checked. */
  | { kind: 'limited'; retryAfterSeconds: number };

export interface AuthenticatorOptions {
  tokens: Pick<TokenVerifier, 'known' | 'verify'>;
  events: Pick<EventBus, 'emit'>;
  /** Invalid tokens one address may present per minute before it is refused for a minute. */
  failuresPerMinute: number;
}

const WINDOW_SECONDS = 60;

/**
 * The one token check of every surface (HTTP, GraphQL over HTTP/SSE, graphql-ws, the relay).
 * Failed authentication is cheap and bounded: once an address has presented `failuresPerMinute`
 * invalid tokens within a minute, it is refused (`limited`) for the rest of that minute without a
 * token lookup, announced by one WARN event (not one per request); a token already known to be
 * valid (cached for a few seconds) still works. A missing token costs nothing to refuse, so it
 * does not count.
 */
export class Authenticator {
  private readonly failures: RateLimiterMemory;

  constructor(private readonly options: AuthenticatorOptions) {
    this.failures = new RateLimiterMemory({ points: options.failuresPerMinute, duration: WINDOW_SECONDS });
  }

  async authenticate(token: string | null, address: string | undefined): Promise<AuthResult> {
    if (!token) return { kind: 'missing' };
    // The common case (a token seen in the last seconds) costs neither a lookup nor the limiter.
    const known = this.options.tokens.known(token);
    if (known) return { kind: 'principal', principal: known };
    const key = address ?? 'unknown';
    const state = await this.failures.get(key);
    if (state && state.consumedPoints >= this.options.failuresPerMinute) {
      return { kind: 'limited', retryAfterSeconds: Math.max(1, Math.ceil(state.msBeforeNext / 1000)) };
    }
    let principal: Principal | null;
    try {
      principal = await this.options.tokens.verify(token);
    } catch (error) {
      if (error instanceof TokenCheckUnavailableError) return { kind: 'unavailable' };
      throw error;
    }
    if (principal) return { kind: 'principal', principal };
    const counted = await this.failures.consume(key).catch((refused: unknown) => {
      // Concurrent failures can pass the check above together and overshoot: still invalid.
      if (refused instanceof RateLimiterRes) return refused;
      throw refused;
    });
    if (counted.consumedPoints === this.options.failuresPerMinute) this.announce(key, counted.msBeforeNext);
    return { kind: 'invalid' };
  }

  private announce(address: string, msLeft: number): void {
    const { failuresPerMinute } = this.options;
    const blockedSeconds = Math.ceil(msLeft / 1000);
    this.options.events.emit({
      type: 'auth.rate_limited',
      source: 'auth',
      severity: 'WARN',
      message: `${address} presented ${failuresPerMinute} invalid tokens within a minute: refused for the next ${blockedSeconds} s`,
      details: { address, failuresPerMinute, blockedSeconds },
    });
  }
}
