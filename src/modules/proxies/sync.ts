import type { Db } from '../../db/client.js';
import type { Proxy as ProxyRow } from '../../generated/prisma/client.js';
import { conflict, upstreamUnavailable } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { EventBus } from '../events/bus.js';
import { isDomainTaken, type NpmClient, NpmError } from './npm/client.js';
import { isManagedByUs, proxyHostInput, servesDomain } from './npm/mapping.js';
import type { NpmProxyHost } from './npm/types.js';
import { parseDestination } from './validation/pipeline.js';
import type { Destination } from './validation/types.js';

export interface NpmSyncOptions {
  client: NpmClient;
  db: Db;
  events: EventBus;
  log: Logger;
}

/**
 * Keeps each proxy's Nginx Proxy Manager proxy host in step with its row. NPM is the step likely
 * to fail (remote, its own validation), so it goes first and the database write second:
 *
 * - create: NPM host created → row inserted. Insert fails → the host is deleted again.
 * - update: NPM host updated (re-created if someone deleted it) → row updated. Update fails → the
 *   host is put back as it was (or deleted, if it was just re-created).
 * - delete: NPM host deleted (already gone counts as deleted) → row deleted. Delete fails → the
 *   row stays and says so; deleting again finishes the job.
 *
 * An NPM failure therefore changes nothing of ours and is UPSTREAM_UNAVAILABLE saying so. When an
 * undo itself fails, a `proxy.npm_out_of_step` ERROR names what is left; hosts we create carry a
 * marker in `meta`, so an orphan left that way is removed by the next create of its domain.
 */
export class NpmSync {
  constructor(private readonly options: NpmSyncOptions) {}

  get client(): NpmClient {
    return this.options.client;
  }

  async create(
    domain: string,
    destination: Destination,
    certificateId: number | null,
    insert: (npmHostId: number) => Promise<ProxyRow>,
  ): Promise<ProxyRow> {
    await this.claimDomain(domain, null, 'nothing was created');
    const host = await this.call('nothing was created', () =>
      this.client.createProxyHost(proxyHostInput(domain, destination, certificateId)),
    );
    try {
      return await insert(host.id);
    } catch (error) {
      await this.undo({ operation: 'create', proxyId: null, domain, npmHostId: host.id }, () =>
        this.client.deleteProxyHost(host.id),
      );
      throw error;
    }
  }

  async update(
    current: ProxyRow,
    domain: string,
    destination: Destination,
    certificateId: number | null,
    write: (npmHostId: number) => Promise<ProxyRow>,
  ): Promise<ProxyRow> {
    if (domain !== current.domain) await this.claimDomain(domain, current.npmHostId, 'nothing was changed');
    const desired = proxyHostInput(domain, destination, certificateId);
    let hostId = current.npmHostId;
    if (hostId !== null) {
      const id = hostId;
      const updated = await this.call('nothing was changed', async () => {
        try {
          return await this.client.updateProxyHost(id, desired);
        } catch (error) {
          // Deleted in NPM behind our back: the update puts it back.
          if (error instanceof NpmError && error.kind === 'not_found') return null;
          throw error;
        }
      });
      if (!updated) hostId = null;
    }
    const recreated = hostId === null;
    if (hostId === null) {
      if (current.npmHostId === null) await this.claimDomain(domain, null, 'nothing was changed');
      hostId = (await this.call('nothing was changed', () => this.client.createProxyHost(desired))).id;
    }
    try {
      return await write(hostId);
    } catch (error) {
      const id = hostId;
      const ref = { operation: 'update', proxyId: current.id, domain, npmHostId: id };
      if (recreated) await this.undo(ref, () => this.client.deleteProxyHost(id));
      else {
        const previous = proxyHostInput(current.domain, stored(current.destination), current.sslCertificateId);
        await this.undo(ref, () => this.client.updateProxyHost(id, previous));
      }
      throw error;
    }
  }

  /** `remove` resolves null when the row was already gone (deleted by someone else meanwhile). */
  async delete(current: ProxyRow, remove: () => Promise<ProxyRow | null>): Promise<ProxyRow | null> {
    const hostId = current.npmHostId;
    if (hostId !== null) await this.call('the proxy was not deleted', () => this.client.deleteProxyHost(hostId));
    try {
      return await remove();
    } catch (error) {
      this.options.events.emit({
        type: 'proxy.npm_out_of_step',
        source: 'proxies',
        severity: 'ERROR',
        message: `proxy ${current.domain}: its Nginx Proxy Manager host was deleted but the proxy could not be; delete it again`,
        details: {
          proxyId: current.id,
          domain: current.domain,
          npmHostId: hostId,
          operation: 'delete',
          error: describe(error),
        },
      });
      throw error;
    }
  }

  /** Every proxy host NPM has (the merged view); UPSTREAM_UNAVAILABLE when NPM cannot answer. */
  listHosts(): Promise<NpmProxyHost[]> {
    return this.call('its proxy hosts are not listed', () => this.client.listProxyHosts());
  }

  /**
   * CONFLICT when another NPM host serves the domain. A host that is ours (marked) but that no
   * proxy points at is an orphan of a failed create: it is removed instead.
   */
  private async claimDomain(domain: string, ownHostId: number | null, consequence: string): Promise<void> {
    const hosts = await this.call(consequence, () => this.client.listProxyHosts());
    for (const host of hosts) {
      if (host.id === ownHostId || !servesDomain(host, domain)) continue;
      const orphan =
        isManagedByUs(host) &&
        (await this.options.db.proxy.findUnique({ where: { npmHostId: host.id }, select: { id: true } })) === null;
      if (!orphan) {
        throw conflict(`${domain} is already served by Nginx Proxy Manager proxy host #${host.id}`, 'input.domain');
      }
      await this.call(consequence, () => this.client.deleteProxyHost(host.id));
      this.options.events.emit({
        type: 'proxy.npm_orphan_removed',
        source: 'proxies',
        severity: 'WARN',
        message: `removed Nginx Proxy Manager host #${host.id} for ${domain}: StreamGate created it but never recorded it`,
        details: { domain, npmHostId: host.id },
      });
    }
  }

  /** One NPM call; its failure as the API reports it (CONFLICT for a taken domain). */
  private async call<T>(consequence: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof NpmError)) throw error;
      if (isDomainTaken(error)) throw conflict(`${error.message}; ${consequence}`, 'input.domain');
      throw upstreamUnavailable(`${error.message}; ${consequence}`);
    }
  }

  /** Undoes an NPM change after the database write failed; if that fails too, says what is left. */
  private async undo(
    ref: { operation: string; proxyId: string | null; domain: string; npmHostId: number },
    operation: () => Promise<unknown>,
  ): Promise<void> {
    try {
      await operation();
    } catch (error) {
      this.options.log.error({ err: error, ...ref }, 'could not undo a Nginx Proxy Manager change');
      this.options.events.emit({
        type: 'proxy.npm_out_of_step',
        source: 'proxies',
        severity: 'ERROR',
        message:
          `proxy ${ref.domain}: the ${ref.operation} failed in the database and could not be undone in ` +
          `Nginx Proxy Manager (host #${ref.npmHostId}); check that host`,
        details: { ...ref, error: describe(error) },
      });
    }
  }
}

/** A stored destination: it passed validation when it was set. */
function stored(destination: string): Destination {
  const result = parseDestination(destination);
  if (!result.ok) throw new Error(`stored destination does not parse: ${result.detail}`);
  return result.destination;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
