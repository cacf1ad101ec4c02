import type { AuthService } from '../auth/index.js';
import type { EventBus } from '../events/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import { SessionService } from './service.js';
import './schema.js'; // registers the module's GraphQL types

/** Live sessions: publishers stream frames, operators watch them (raw relay or `streamFrames`). */
export const sessionsModule = defineModule({
  name: 'sessions',
  create: ({ env, database, db, log, events, auth }: CoreDeps & { events: EventBus; auth: AuthService }) =>
    new SessionService({ env, db, log, events, auth, singleProcess: database.engine === 'embedded' }),
  // Before the server listens: what a killed predecessor left ACTIVE is WAITING again.
  start: (sessions) => sessions.recover(),
});

export { SessionService } from './service.js';
