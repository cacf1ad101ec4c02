import type { EventOf } from '../events/index.js';

declare module '../events/index.js' {
  interface EventCatalog {
    'auth.token_generated': EventOf<'auth.token_generated', 'auth', { tokenId: string; name: string }>;
    'auth.rate_limited': EventOf<
      'auth.rate_limited',
      'auth',
      { address: string; failuresPerMinute: number; blockedSeconds: number }
    >;
  }
}

declare module '../events/index.js' {
  interface EventCatalog {
    'auth.token_created': EventOf<
      'auth.token_created',
      'auth',
      { tokenId: string; name: string; role: string; expiresAt: string | null }
    >;
    /** `closedConnections`: graphql-ws sockets and relay operators of the token, closed with 4403. */
    'auth.token_revoked': EventOf<
      'auth.token_revoked',
      'auth',
      { tokenId: string; name: string; role: string; closedConnections: number }
    >;
  }
}
