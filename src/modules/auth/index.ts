import type { EventBus } from '../events/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import { Authenticator } from './authenticate.js';

/** Bearer tokens: the one check every surface (HTTP, GraphQL, graphql-ws, the relay) asks. */
export const authModule = defineModule({
  name: 'auth',
  create: ({ env, tokens, events }: CoreDeps & { events: EventBus }) =>
    new Authenticator({ tokens, events, failuresPerMinute: env.AUTH_FAILURES_PER_MINUTE }),
});

export { Authenticator, type AuthResult } from './authenticate.js';
export { hasRole, ROLES, type Role } from './roles.js';
export {
  bearerToken,
  bootstrapAdminToken,
  generateToken,
  hashToken,
  type Principal,
  TokenVerifier,
} from './tokens.js';
