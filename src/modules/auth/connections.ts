import type { Principal } from './tokens.js';

/**
 * Long-lived connections (graphql-ws sockets, relay operators) by the token they authenticated
 * with, so that revoking or expiring a token closes them too, not only its next request.
 */
export class OpenConnections {
  private readonly byToken = new Map<string, Set<() => void>>();

  /** Registers a connection; `close` is called (once) when its token stops being valid. Returns the unregister. */
  watch(principal: Principal, close: () => void): () => void {
    let closers = this.byToken.get(principal.id);
    if (!closers) {
      closers = new Set();
      this.byToken.set(principal.id, closers);
    }
    const entry = () => close();
    closers.add(entry);
    return () => {
      const current = this.byToken.get(principal.id);
      current?.delete(entry);
      if (current?.size === 0) this.byToken.delete(principal.id);
    };
  }

  /** Closes every connection of the token; how many there were. */
  closeToken(tokenId: string): number {
    const closers = this.byToken.get(tokenId);
    if (!closers) return 0;
    this.byToken.delete(tokenId);
    for (const close of closers) close();
    return closers.size;
  }

  /** Ids of the stored tokens with open connections (ADMIN_TOKEN's `env` is not revocable). */
  tokenIds(): string[] {
    return [...this.byToken.keys()].filter((id) => id !== 'env');
  }
}
