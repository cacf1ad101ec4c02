import type { Logger } from '../../../lib/logger.js';
import type { EventBus } from '../../events/index.js';
import type { Route } from '../types.js';
import { type ProxmoxClient, ProxmoxError } from './client.js';
import { ProxmoxInventory, type ProxmoxLink, readInventory } from './inventory.js';

export interface ProxmoxLinkerOptions {
  client: ProxmoxClient;
  events: Pick<EventBus, 'emit'>;
  log: Logger;
  refreshMs: number;
  /** Closes the client's connections (the linker owns them). */
  close(): Promise<void>;
}

type Health = 'unread' | 'ok' | 'unreachable' | 'auth';

/**
 * Links routes to the Proxmox nodes and guests they point at. The inventory is read at start and
 * every `refreshMs`; links are looked up in the last good reading (map reads, no I/O), so a route
 * keeps its link while Proxmox is away. A refused token (401/403) drops every link: a reading the
 * token may no longer make is not one to trust. Each outage is one event, and so is each recovery.
 */
export class ProxmoxLinker {
  private inventory: ProxmoxInventory = ProxmoxInventory.EMPTY;
  private health: Health = 'unread';
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly options: ProxmoxLinkerOptions) {}

  /** Reads the inventory now (without waiting for it) and then every `refreshMs`. */
  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.refreshing;
    await this.options.close();
  }

  /** The node or guest the route points at, in the last good reading; null when none matches. */
  linkOf(route: Route): ProxmoxLink | null {
    return this.inventory.link({ host: upstreamHost(route), alias: route.alias });
  }

  /** One reading (a refresh already under way is joined, not doubled). */
  refresh(): Promise<void> {
    this.refreshing ??= this.read().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async read(): Promise<void> {
    const { events, log } = this.options;
    try {
      const inventory = await readInventory(this.options.client);
      if (this.stopped) return;
      this.inventory = inventory;
      log.info({ resources: inventory.size }, 'proxmox inventory read');
      if (this.health === 'unreachable' || this.health === 'auth') {
        events.emit({
          type: 'proxmox.recovered',
          source: 'routes',
          severity: 'INFO',
          message: `Proxmox answers again: ${inventory.size} nodes and guests to link routes to`,
          details: { resources: inventory.size },
        });
      }
      this.health = 'ok';
    } catch (error) {
      if (this.stopped) return;
      const message = error instanceof Error ? error.message : String(error);
      const kind = error instanceof ProxmoxError ? error.kind : 'unreachable';
      log.warn({ err: error }, 'proxmox inventory not read');
      if (kind === 'auth') {
        this.inventory = ProxmoxInventory.EMPTY;
        if (this.health !== 'auth') {
          events.emit({
            type: 'proxmox.auth_failed',
            source: 'routes',
            severity: 'ERROR',
            message: `Proxmox refused the API token; no route is linked until it is accepted: ${message}`,
            details: { error: message },
          });
        }
      } else if (this.health !== 'unreachable') {
        events.emit({
          type: 'proxmox.unreachable',
          source: 'routes',
          severity: 'WARN',
          message: `Proxmox could not be read; routes keep their last links: ${message}`,
          details: { error: message },
        });
      }
      this.health = kind;
    }
  }
}

/** The host a route's upstream names (without IPv6 brackets); null when it has none. */
function upstreamHost(route: Route): string | null {
  if (route.kind !== 'EXCLUDED') return route.upstream.host;
  if (!route.upstreamUrl) return null;
  try {
    return new URL(route.upstreamUrl).hostname.replace(/^\[|\]$/g, '') || null;
  } catch {
    return null;
  }
}
