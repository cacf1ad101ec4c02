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
