import { onRemoteWrite } from '../../db/write-clock.js';
import { type CoreDeps, defineModule } from '../module.js';
import { EventBus } from './bus.js';
import type { EventOf } from './types.js';
import './schema.js'; // registers the module's GraphQL types

/** The event log: every event published live, stored by policy, purged by age. Listed first, stopped last. */
export const eventsModule = defineModule({
  name: 'events',
  create: ({ db, database, log, env }: CoreDeps) => {
    const events = new EventBus({ db, log, minStoredSeverity: env.EVENT_LOG_MIN_SEVERITY });
    // Another instance stored entries: publish them here, in order (a no-op unless shared).
    onRemoteWrite(database.writes, ['EventLog'], () => events.catchUp());
    return events;
  },
  start: (events) => events.start(),
  // Last of all modules: what the others record while they stop is still stored.
  stop: (events) => events.close(),
});

export { type Audit, EventBus } from './bus.js';
export type { Actor, AppEvent, EventLogEntry, HealthSubjectKind, Severity } from './types.js';

/**
 * Every event StreamGate publishes, by type. Each module declares its own events in its
 * `events.ts`, by augmenting this interface (`declare module '../events/index.js'`): a module's
 * events live in its folder, and emitters get each event's `details` checked by the compiler.
 */
export interface EventCatalog {
  'events.purged': EventOf<'events.purged', 'system', { deleted: number; olderThan: string }>;
}

export type { AppEventType, EventOf, EventSource } from './types.js';
