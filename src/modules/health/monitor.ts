// STUB — replaced by the health monitor work (issue 4). Signatures are the contract other modules use.
import type { Agent } from 'undici';
import type { Db } from '../../db/client.js';
import type { Env } from '../../env.js';
import type { Logger } from '../../lib/logger.js';
import type { EventBus } from '../events/bus.js';
import type { SettingsService } from '../settings/service.js';

export interface HealthMonitorOptions {
  env: Env;
  db: Db;
  log: Logger;
  events: EventBus;
  settings: SettingsService;
  nodeAgent: Agent;
}

export class HealthMonitor {
  constructor(readonly options: HealthMonitorOptions) {}
  /** Starts scheduled checks (unless HEALTH_MONITOR=off). */
  start(): void {}
  /** Stops scheduling, waits for running checks, writes what is pending. Before the database closes. */
  async stop(): Promise<void> {}
}
