// STUB — replaced by the settings work (issue 4). Signatures are the contract other modules use.
import type { Db } from '../../db/client.js';
import type { Settings } from '../../generated/prisma/client.js';
import type { EventBus } from '../events/bus.js';
import type { Actor } from '../events/types.js';

export type { Settings };

export class SettingsService {
  constructor(readonly options: { db: Db; events: EventBus }) {}
  /** Current settings (cached; re-read from the database at most every few seconds). */
  async get(): Promise<Settings> {
    return this.options.db.settings.findUniqueOrThrow({ where: { id: 1 } });
  }
  /** Validates and stores a change; listeners hear of it at once. */
  async update(_input: unknown, _actor: Actor): Promise<Settings> {
    return this.get();
  }
  /** Called with the new settings after every change; returns an unsubscribe function. */
  onChange(_listener: (settings: Settings) => void): () => void {
    return () => {};
  }
}
