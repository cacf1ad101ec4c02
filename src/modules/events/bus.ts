// STUB — replaced by the events work (issue 4). Signatures are the contract other modules use.
import type { Db } from '../../db/client.js';
import type { Logger } from '../../lib/logger.js';
import type { Actor, AppEvent, EventLogEntry, Severity } from './types.js';

export interface EventBusOptions {
  db: Db;
  log: Logger;
  /** EVENT_LOG_MIN_SEVERITY */
  minStoredSeverity: Severity;
}

export interface EventFilter {
  minSeverity?: Severity | null;
  source?: string | null;
}

export class EventBus {
  constructor(readonly options: EventBusOptions) {}
  /** Publishes an event (and stores it when policy says so). Never throws; storage is asynchronous. */
  emit(_event: AppEvent, _actor?: Actor | null): void {}
  /** As emit, resolving once the entry is stored (when stored) and published. */
  async record(_event: AppEvent, _actor?: Actor | null): Promise<EventLogEntry | null> {
    return null;
  }
  /** Live entries matching the filter, until the consumer returns or the bus closes. */
  subscribe(_filter: EventFilter): AsyncIterableIterator<EventLogEntry> {
    return (async function* () {})();
  }
  /** Starts the retention purge. */
  start(): void {}
  /** Stops the purge, flushes pending writes, ends subscriptions. */
  async close(): Promise<void> {}
}
