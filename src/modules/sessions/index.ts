import type { AuthService } from '../auth/index.js';
import type { ClusterService } from '../cluster/index.js';
import type { EventBus } from '../events/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import { SessionService } from './service.js';
import './schema.js'; // registers the module's GraphQL types

/** Live sessions: publishers stream frames, operators watch them (raw relay or `streamFrames`). */
export const sessionsModule = defineModule({
  name: 'sessions',
  create: ({
    env,
    database,
    db,
    log,
    events,
    auth,
    cluster,
  }: CoreDeps & { events: EventBus; auth: AuthService; cluster: ClusterService }) =>
    new SessionService({
      env,
      db,
      log,
      events,
      auth,
      singleProcess: database.engine === 'embedded',
      link: cluster.relay,
    }),
  // Before the server listens: what a killed predecessor left ACTIVE is WAITING again.
  start: (sessions) => sessions.recover(),
});

export { SessionService } from './service.js';
