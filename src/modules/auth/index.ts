import { onRemoteWrite } from '../../db/write-clock.js';
import type { EventBus } from '../events/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import { AuthService } from './service.js';
import './schema.js'; // registers the module's GraphQL types

/** Bearer tokens and roles: the one check every surface asks, and token management. */
export const authModule = defineModule({
  name: 'auth',
  create: ({ env, db, database, log, tokens, events }: CoreDeps & { events: EventBus }) => {
    // A token revoked through another instance is refused here as soon as that is announced.
    onRemoteWrite(database.writes, ['ApiToken'], () => tokens.clear());
    return new AuthService({ db, log, tokens, events, failuresPerMinute: env.AUTH_FAILURES_PER_MINUTE });
  },
  start: (auth) => auth.start(),
  // Before the database closes: the last token uses are written.
  stop: (auth) => auth.stop(),
});

export type { AuthResult } from './authenticate.js';
export { hasRole, ROLES, type Role } from './roles.js';
export { type ApiTokenRow, AuthService } from './service.js';
export { bearerToken, bootstrapAdminToken, generateToken, hashToken, type Principal, TokenVerifier } from './tokens.js';
