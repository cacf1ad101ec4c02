import type { EventBus } from '../events/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import { SettingsService } from './service.js';
import './schema.js'; // registers the module's GraphQL types

/** Operator-tunable settings (retention, health intervals and thresholds), applied without a restart. */
export const settingsModule = defineModule({
  name: 'settings',
  create: ({ db, events }: CoreDeps & { events: EventBus }) => new SettingsService({ db, events }),
});

export { type Settings, SettingsService } from './service.js';
