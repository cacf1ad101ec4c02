import type { Db } from '../../db/client.js';
import type { Settings } from '../../generated/prisma/client.js';
import { parseInput } from '../../lib/validate.js';
import type { Actor, EventBus } from '../events/index.js';
import { updateSettingsSchema } from './input.js';

export type { Settings };

export const SETTINGS_FIELDS = [
  'staleThresholdDays',
  'healthCheckIntervalSeconds',
  'healthFailureThreshold',
  'healthSuccessThreshold',
  'sslCertificateId',
] as const satisfies readonly (keyof Settings)[];

export interface SettingsServiceOptions {
  db: Db;
  events: EventBus;
  /** How long get() trusts its copy before re-reading (default 5 s): other instances' changes show up within it. */
  cacheMs?: number;
}

/**
 * The one settings row. Reads are cached briefly; a change made here reaches listeners at once, a
 * change made by another instance as soon as it is announced (reload()), or when get() next
 * re-reads it.
 */
export class SettingsService {
  private cached: { settings: Settings; at: number } | null = null;
  private loading: Promise<Settings> | null = null;
  private readonly listeners = new Set<(settings: Settings) => void>();

  constructor(readonly options: SettingsServiceOptions) {}

  /** Current settings (cached; re-read from the database at most every few seconds). */
  async get(): Promise<Settings> {
    if (this.cached && Date.now() - this.cached.at < (this.options.cacheMs ?? 5_000)) return this.cached.settings;
    this.loading ??= this.options.db.settings
      .findUniqueOrThrow({ where: { id: 1 } })
      .then((settings) => this.accept(settings))
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  /** Reads the row again now (a change made elsewhere); listeners hear of what differs. */
  reload(): Promise<Settings> {
    this.cached = null;
    return this.get();
  }

  /** Validates and stores a change; listeners hear of it at once, the event log records who and what. */
  async update(input: unknown, actor: Actor): Promise<Settings> {
    const change = parseInput(updateSettingsSchema, input, 'input');
    const { before, after } = await this.options.db.$transaction(async (tx) => {
      // Row lock: concurrent changes queue up, so each one's `previous` values are exact.
      await tx.$executeRaw`SELECT 1 FROM "Settings" WHERE "id" = 1 FOR UPDATE`;
      const current = await tx.settings.findUniqueOrThrow({ where: { id: 1 } });
      if (changedFields(current, change).length === 0) return { before: current, after: current };
      return { before: current, after: await tx.settings.update({ where: { id: 1 }, data: change }) };
    });
    const fields = changedFields(before, after);
    if (fields.length === 0) return this.accept(after);
    this.accept(after, true);
    await this.options.events.record(
      {
        type: 'settings.updated',
        alwaysStored: true,
        source: 'system',
        severity: 'INFO',
        message: `settings changed: ${fields.map((f) => `${f} ${before[f]} → ${after[f]}`).join(', ')}`,
        details: {
          changes: Object.fromEntries(fields.map((f) => [f, after[f]])),
          previous: Object.fromEntries(fields.map((f) => [f, before[f]])),
        },
      },
      actor,
    );
    return after;
  }

  /** Called with the new settings after every change; returns an unsubscribe function. */
  onChange(listener: (settings: Settings) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Keeps `settings` as the current copy unless it is older than the one held (a read that raced
   * a change), and tells listeners when the values differ from what they last heard.
   */
  private accept(settings: Settings, changed = false): Settings {
    const held = this.cached?.settings;
    if (!changed && held && settings.updatedAt < held.updatedAt) return held;
    this.cached = { settings, at: Date.now() };
    if (changed || (held && changedFields(held, settings).length > 0)) {
      for (const listener of this.listeners) {
        try {
          listener(settings);
        } catch (error) {
          this.options.events.options.log.error({ err: error }, 'a settings listener failed');
        }
      }
    }
    return settings;
  }
}

/** The settings fields `next` sets to a value different from `current`'s. */
function changedFields(current: Settings, next: Partial<Settings>): (typeof SETTINGS_FIELDS)[number][] {
  return SETTINGS_FIELDS.filter((f) => next[f] !== undefined && next[f] !== current[f]);
}
