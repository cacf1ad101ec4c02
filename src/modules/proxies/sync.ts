import { randomUUID } from 'node:crypto';
import type { Db } from '../../db/client.js';
import type { Proxy as ProxyRow } from '../../generated/prisma/client.js';
import { conflict, upstreamUnavailable } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { EventBus } from '../events/index.js';
import { isDomainTaken, type NpmClient, NpmError } from './npm/client.js';
import { forwarding, markOf, newProxyHost, nginxRefusal, renamedDomains, servesDomain } from './npm/mapping.js';
import type { NpmProxyHost, NpmProxyHostInput } from './npm/types.js';
import type { Destination } from './validation/types.js';

export interface NpmSyncOptions {
  client: NpmClient;
  db: Db;
  events: EventBus;
  log: Logger;
  /** This installation's id (Settings.installationId), put in the mark of every host it creates. */
  installationId: () => Promise<string>;
}

/**
 * A marked host that no proxy points at is removed as an orphan only once older than this: until
 * then it may be a create on another instance, between its NPM step and its database step.
 */
export const ORPHAN_MIN_AGE_MS = 60_000;

interface ChangeRef {
  operation: 'create' | 'update';
  proxyId: string | null;
  domain: string;
}

/**
 * Keeps each proxy's Nginx Proxy Manager proxy host in step with its row. NPM is the step likely
 * to fail (remote, its own validation), so it goes first and the database write second:
 *
 * - create: NPM host created → row inserted. Insert fails → the host is deleted again.
 * - update: only the fields that change are sent → row updated. Update fails → those fields are
 *   put back as they were. A proxy without a host (created before sync, or its host deleted in
 *   NPM) gets one created.
 * - delete: NPM host deleted (already gone counts as deleted) → row deleted. Delete fails → the
 *   row stays and says so; deleting again finishes the job.
 *
 * NPM failing therefore changes nothing of ours: UPSTREAM_UNAVAILABLE saying so. When NPM may have
 * applied a change whose answer was lost (a timeout, a 5xx), or nginx refused the config NPM wrote
 * for it, the change is undone in NPM as well. When an undo itself fails, a `proxy.npm_out_of_step`
 * ERROR names what is left; a host left by a create is removed by a later create of its domain.
 */
export class NpmSync {
  constructor(private readonly options: NpmSyncOptions) {}

  private get client(): NpmClient {
    return this.options.client;
  }

  /**
   * Before anything is probed or written: CONFLICT when an NPM host other than `ownHostId` serves
   * the domain. A host of this installation that no proxy points at (older than ORPHAN_MIN_AGE_MS)
   * is the leftover of a failed create: it is removed instead.
   */
  async claimDomain(domain: string, ownHostId: number | null, consequence: string): Promise<void> {
    const hosts = await this.call(consequence, () => this.client.listProxyHosts());
    const installationId = await this.options.installationId();
    for (const host of hosts) {
      if (host.id === ownHostId || !servesDomain(host, domain)) continue;
      const refusal = await this.whyNotAnOrphan(host, installationId);
      if (refusal !== null) {
        throw conflict(
          `${domain} is already served by Nginx Proxy Manager proxy host #${host.id}${refusal}`,
          'input.domain',
        );
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

  async create(
    domain: string,
    destination: Destination,
    certificateId: number | null,
    insert: (npmHostId: number) => Promise<ProxyRow>,
  ): Promise<ProxyRow> {
    const ref: ChangeRef = { operation: 'create', proxyId: null, domain };
    const host = await this.createHost(ref, destination, certificateId, 'nothing was created');
    return this.thenWrite(
      ref,
      host.id,
      () => insert(host.id),
      () => this.client.deleteProxyHost(host.id),
    );
  }

  /**
   * `current` is the row before the change; the caller has made sure something changes.
   * `certificateId` is used only when the proxy gets a new host; an existing host keeps its own.
   */
  async update(
    current: ProxyRow,
    domain: string,
    destination: Destination,
    certificateId: number | null,
    write: (synced: { npmHostId: number; sslCertificateId?: number | null }) => Promise<ProxyRow>,
  ): Promise<ProxyRow> {
    const ref: ChangeRef = { operation: 'update', proxyId: current.id, domain };
    const consequence = 'nothing was changed';
    const hostId = current.npmHostId;
    const previous = hostId === null ? null : await this.call(consequence, () => this.client.getProxyHost(hostId));
    if (!previous) {
      // Created before sync was on, or its host was deleted in NPM behind our back: it gets one.
      const host = await this.createHost(ref, destination, certificateId, consequence);
      const synced = { npmHostId: host.id, sslCertificateId: certificateId };
      return this.thenWrite(
        ref,
        host.id,
        () => write(synced),
        () => this.client.deleteProxyHost(host.id),
      );
    }
    const { change, undo } = hostChange(previous, current, domain, destination);
    const restore = () => this.client.updateProxyHost(previous.id, undo);
    let updated: NpmProxyHost;
    try {
      updated = await this.client.updateProxyHost(previous.id, change);
    } catch (error) {
      if (!mayHaveApplied(error)) throw this.failure(error, consequence);
      throw this.failure(error, afterUndo(await this.undo(ref, previous.id, restore), consequence));
    }
    const refused = nginxRefusal(updated);
    if (refused !== null) {
      const undone = await this.undo(ref, previous.id, restore);
      throw nginxRefused(previous.id, refused, afterUndo(undone, consequence));
    }
    return this.thenWrite(ref, previous.id, () => write({ npmHostId: previous.id }), restore);
  }

  /** `remove` resolves null when the row was already gone (deleted by someone else meanwhile). */
  async delete(current: ProxyRow, remove: () => Promise<ProxyRow | null>): Promise<ProxyRow | null> {
    const hostId = current.npmHostId;
    if (hostId !== null) {
      try {
        await this.client.deleteProxyHost(hostId);
      } catch (error) {
        const maybe = mayHaveApplied(error) ? `; NPM may have deleted host #${hostId}, deleting again finishes` : '';
        throw this.failure(error, `the proxy was not deleted${maybe}`);
      }
    }
    try {
      return await remove();
    } catch (error) {
      const ref = { operation: 'delete', proxyId: current.id, domain: current.domain };
      this.outOfStep(
        ref,
        hostId,
        error,
        `proxy ${current.domain}: its Nginx Proxy Manager host was deleted but the proxy could not be; delete it again`,
      );
      throw error;
    }
  }

  /** Lets calls under way finish, then closes the connections to NPM; later calls fail. */
  close(): Promise<void> {
    return this.client.close();
  }

  /** Every proxy host NPM has (the merged view); UPSTREAM_UNAVAILABLE when NPM cannot answer. */
  listHosts(): Promise<NpmProxyHost[]> {
    return this.call('its proxy hosts are not listed', () => this.client.listProxyHosts());
  }

  /**
   * Creates the host, marked as ours, and reads it back. When the answer was lost, the host it may
   * have created is looked up by its create id and removed; when nginx refused its config, or it
   * cannot be read back, it is removed too.
   */
  private async createHost(
    ref: ChangeRef,
    destination: Destination,
    certificateId: number | null,
    consequence: string,
  ): Promise<NpmProxyHost> {
    const mark = { installationId: await this.options.installationId(), createId: randomUUID(), createdAt: new Date() };
    let host: NpmProxyHost;
    try {
      host = await this.client.createProxyHost(newProxyHost(ref.domain, destination, certificateId, mark));
    } catch (error) {
      if (!mayHaveApplied(error)) throw this.failure(error, consequence);
      const undone = await this.undo(ref, null, () => this.removeCreated(mark.createId));
      throw this.failure(error, afterUndo(undone, consequence));
    }
    // NPM answers a create before it writes the nginx config: only a read shows whether nginx took it.
    const remove = () => this.client.deleteProxyHost(host.id);
    let stored: NpmProxyHost | null;
    try {
      stored = await this.client.getProxyHost(host.id);
    } catch (error) {
      throw this.failure(error, afterUndo(await this.undo(ref, host.id, remove), consequence));
    }
    const refused = stored ? nginxRefusal(stored) : 'the host was gone right after it was created';
    if (refused !== null)
      throw nginxRefused(host.id, refused, afterUndo(await this.undo(ref, host.id, remove), consequence));
    return host;
  }

  /** The database step after NPM changed; when it fails, the NPM change is undone. */
  private async thenWrite(
    ref: ChangeRef,
    hostId: number,
    write: () => Promise<ProxyRow>,
    undo: () => Promise<unknown>,
  ): Promise<ProxyRow> {
    try {
      return await write();
    } catch (error) {
      await this.undo(ref, hostId, undo);
      throw error;
    }
  }

  private async removeCreated(createId: string): Promise<void> {
    const hosts = await this.client.listProxyHosts();
    for (const host of hosts) if (markOf(host)?.createId === createId) await this.client.deleteProxyHost(host.id);
  }

  /** Null when the host is our orphan (safe to remove); otherwise what to add to the CONFLICT message. */
  private async whyNotAnOrphan(host: NpmProxyHost, installationId: string): Promise<string | null> {
    const mark = markOf(host);
    if (mark?.installationId !== installationId) return '';
    const claimed = await this.options.db.proxy.findUnique({ where: { npmHostId: host.id }, select: { id: true } });
    if (claimed) return '';
    const wait = Math.ceil((ORPHAN_MIN_AGE_MS - (Date.now() - mark.createdAt.getTime())) / 1000);
    if (wait > 0) return ` (left by a StreamGate create that did not finish; it is removed by a create in ${wait} s)`;
    return null;
  }

  /** One NPM call whose failure changed nothing; its failure as the API reports it. */
  private async call<T>(consequence: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw this.failure(error, consequence);
    }
  }

  /** An NPM failure as the API reports it: CONFLICT for a domain NPM has, else UPSTREAM_UNAVAILABLE. */
  private failure(error: unknown, consequence: string): unknown {
    if (!(error instanceof NpmError)) return error;
    if (isDomainTaken(error)) return conflict(`${error.message}; ${consequence}`, 'input.domain');
    return upstreamUnavailable(`${error.message}; ${consequence}`);
  }

  /** Undoes an NPM change; false (and an ERROR event saying what is left) when that fails too. */
  private async undo(ref: ChangeRef, hostId: number | null, operation: () => Promise<unknown>): Promise<boolean> {
    try {
      await operation();
      return true;
    } catch (error) {
      const host = hostId === null ? `a host for ${ref.domain} may be left` : `check host #${hostId}`;
      this.outOfStep(
        ref,
        hostId,
        error,
        `proxy ${ref.domain}: the ${ref.operation} could not be undone in Nginx Proxy Manager; ${host}`,
      );
      return false;
    }
  }

  private outOfStep(
    ref: { operation: string; proxyId: string | null; domain: string },
    npmHostId: number | null,
    error: unknown,
    message: string,
  ): void {
    this.options.log.error({ err: error, ...ref, npmHostId }, 'Nginx Proxy Manager is out of step');
    this.options.events.emit({
      type: 'proxy.npm_out_of_step',
      source: 'proxies',
      severity: 'ERROR',
      message,
      details: { ...ref, npmHostId, error: error instanceof Error ? error.message : String(error) },
    });
  }
}

/**
 * What to send NPM for an update, and what puts it back: only the fields that change, so what an
 * admin set in NPM (a certificate, other domain names, options) is left alone.
 */
function hostChange(
  previous: NpmProxyHost,
  current: ProxyRow,
  domain: string,
  destination: Destination,
): { change: Partial<NpmProxyHostInput>; undo: Partial<NpmProxyHostInput> } {
  const change: Partial<NpmProxyHostInput> = {};
  const undo: Partial<NpmProxyHostInput> = {};
  if (domain !== current.domain) {
    change.domain_names = renamedDomains(previous, current.domain, domain);
    undo.domain_names = previous.domain_names;
  }
  if (destination.url !== current.destination) {
    Object.assign(change, forwarding(destination));
    Object.assign(undo, {
      forward_scheme: previous.forward_scheme,
      forward_host: previous.forward_host,
      forward_port: previous.forward_port,
      locations: previous.locations,
    });
  }
  return { change, undo };
}

/** Whether a failed NPM call may still have changed something there (see NpmError). */
function mayHaveApplied(error: unknown): boolean {
  return error instanceof NpmError && error.mayHaveApplied;
}

function afterUndo(undone: boolean, consequence: string): string {
  return undone
    ? `${consequence} (what NPM may have applied was undone)`
    : `${consequence} in StreamGate, but NPM may hold the change and undoing it failed (see the proxy.npm_out_of_step event)`;
}

function nginxRefused(hostId: number, reason: string, consequence: string) {
  return upstreamUnavailable(
    `Nginx Proxy Manager saved proxy host #${hostId} but nginx refused its configuration (${reason}); ${consequence}`,
  );
}
