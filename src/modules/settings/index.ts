import { onRemoteWrite } from '../../db/write-clock.js';
import type { EventBus } from '../events/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import { SettingsService } from './service.js';
import './schema.js'; // registers the module's GraphQL types

/** Operator-tunable settings (retention, health intervals and thresholds), applied without a restart. */
export const settingsModule = defineModule({
  name: 'settings',
  create: ({ db, database, events }: CoreDeps & { events: EventBus }) => {
    const settings = new SettingsService({ db, events });
    // Changed through another instance: read again now, so listeners (the monitor) apply it.
    onRemoteWrite(database.writes, ['Settings'], () => void settings.reload().catch(() => {}));
    return settings;
  },
});

export { type Settings, SettingsService } from './service.js';
