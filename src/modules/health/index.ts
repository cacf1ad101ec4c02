import type { EventBus } from '../events/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import type { SettingsService } from '../settings/index.js';
import { HealthMonitor } from './monitor.js';
import './schema.js'; // registers the module's GraphQL types

/**
 * One monitor for every subject the other modules register (their descriptors' `healthSources`).
 * Listed before them, so it stops after them: its last results are written while the database
 * and the event log are still open.
 */
export const healthModule = defineModule({
  name: 'health',
  create: ({ env, db, log, events, settings }: CoreDeps & { events: EventBus; settings: SettingsService }) =>
    new HealthMonitor({ env, db, log, events, settings }),
  start: (health) => health.start(),
  stop: (health) => health.stop(),
});

export { type HealthInfoShape, healthInfo } from './info.js';
export { HealthMonitor, type ManualCheck } from './monitor.js';
export { rowSubjects } from './rows.js';
export type * from './types.js';
