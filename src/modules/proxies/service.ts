import type { Dispatcher } from 'undici';
import type { Db } from '../../db/client.js';
import { isRecordNotFound, isUniqueViolation } from '../../db/errors.js';
import type { Proxy as ProxyRow } from '../../generated/prisma/client.js';
import { appError, badInput, conflict, notFound } from '../../lib/errors.js';
import type { OutboundPolicy } from '../../lib/outbound.js';
import { type PageArgs, pageQuery, toPage } from '../../lib/pagination.js';
import { isUuid } from '../../lib/uuid.js';
import { parseInput } from '../../lib/validate.js';
import type { Actor, EventBus } from '../events/index.js';
import type { HealthMonitor } from '../health/index.js';
import type { SettingsService } from '../settings/index.js';
import { ProxyHealthSource } from './health.js';
import { createProxySchema, updateProxySchema } from './input.js';
import { type AllProxies, mergeListing } from './listing.js';
import type { NpmSync } from './sync.js';
import { validateDestination, validationSteps } from './validation/pipeline.js';
import { type ParsedDestination, parseDestination } from './validation/syntax.js';
import type { Destination, ValidationOptions, ValidationResult, ValidationStep } from './validation/types.js';

export type { ProxyRow };

/** What a create or update answers: the proxy (null when nothing was changed) and its validation. */
export interface ProxyPayload {
  proxy: ProxyRow | null;
  validation: ValidationResult;
}

export interface ProxyServiceOptions {
  db: Db;
  events: EventBus;
  settings: SettingsService;
  health: Pick<HealthMonitor, 'forget'>;
  /** HTTP to proxy destinations (health checks), through the outbound address policy. */
  agent: Dispatcher;
  /** The outbound address policy: validation's TCP step and literal destinations are checked against it. */
  policy: Pick<OutboundPolicy, 'checkLiteral' | 'lookup'>;
  /** HEALTH_CHECK_TIMEOUT_MS */
  checkTimeoutMs: number;
  /** Nginx Proxy Manager sync; null when NPM_URL is not configured. */
  npm: NpmSync | null;
  /** Test knob: shorter pipeline timeouts. */
  validation?: ValidationOptions['timeouts'];
  /** Runs a change while no other instance runs one (the cluster's lock); absent: this process only. */
  exclusive?: <T>(section: () => Promise<T>) => Promise<T>;
}

const CURSOR_PREFIX = 'proxy';

/** An update that does not touch the destination runs no pipeline: nothing new to validate. */
const NOT_REVALIDATED: ValidationResult = { ok: true, steps: [] };

/** What is observed about a destination says nothing about a new one: UNKNOWN until checked. */
const UNCHECKED = {
  status: 'UNKNOWN',
  lastCheckedAt: null,
  healthLatencyMs: null,
  healthDetail: null,
  healthySince: null,
} as const satisfies Partial<ProxyRow>;

/**
 * Proxy lifecycle: validate, then change Nginx Proxy Manager (when configured) and the database so
 * that either both change or neither does (see sync.ts for the order and the compensations).
 * Changes run one at a time, in this process and across instances (the cluster's lock), so two
 * edits never interleave their NPM and database writes; a change made by another instance since
 * this one read the row is detected by `updatedAt` and refused.
 */
export class ProxyService {
  /** Every proxy as a health subject, checked at its destination (registered by the module). */
  readonly healthSource: ProxyHealthSource;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ProxyServiceOptions) {
    this.healthSource = new ProxyHealthSource(options.db, options.agent, options.checkTimeoutMs);
  }

  /** The pipeline at once (validateProxy): no side effects beyond the probes themselves. */
  validate(destination: string, signal?: AbortSignal): Promise<ValidationResult> {
    return validateDestination(destination, { signal, timeouts: this.options.validation, policy: this.options.policy });
  }

  /** The same pipeline, step by step as each completes (validateProxyProgress). */
  validateSteps(destination: string, signal?: AbortSignal): AsyncGenerator<ValidationStep> {
    return validationSteps(destination, { signal, timeouts: this.options.validation, policy: this.options.policy });
  }

  async list(args: PageArgs) {
    const query = pageQuery(CURSOR_PREFIX, args, isUuid);
    const rows = await this.options.db.proxy.findMany({
      where: query.afterKey ? { id: { gt: query.afterKey } } : {},
      orderBy: { id: 'asc' },
      take: query.take,
    });
    return toPage(CURSOR_PREFIX, rows, query, (p) => p.id);
  }

  /** A proxy by id; null for unknown or malformed ids. */
  find(id: string): Promise<ProxyRow | null> {
    if (!isUuid(id)) return Promise.resolve(null);
    return this.options.db.proxy.findUnique({ where: { id } });
  }

  /** `signal`: the caller went away; the validation stops (nothing is created then). */
  async create(input: unknown, actor: Actor, signal?: AbortSignal): Promise<ProxyPayload> {
    const { domain, destination: raw } = parseInput(createProxySchema, input, 'input');
    // Everything that can refuse the proxy without probing comes first.
    const requested = parseDestination(raw);
    this.assertSyncable(requested);
    this.assertReachable(requested);
    await this.assertDomainFree(domain);
    await this.options.npm?.claimDomain(domain, null, 'nothing was created');
    const validation = await this.validate(raw, signal);
    if (!validation.ok) return { proxy: null, validation };
    const destination = accepted(requested);
    const proxy = await this.exclusive(async () => {
      await this.assertDomainFree(domain);
      const { db, npm, settings } = this.options;
      const insert = (extra: { npmHostId: number | null; sslCertificateId: number | null }) =>
        withDomainConflict(domain, () => db.proxy.create({ data: { domain, destination: destination.url, ...extra } }));
      if (!npm) return insert({ npmHostId: null, sslCertificateId: null });
      const certificateId = (await settings.get()).sslCertificateId;
      return npm.create(domain, destination, certificateId, (npmHostId) =>
        insert({ npmHostId, sslCertificateId: certificateId }),
      );
    });
    await this.options.events.record(
      {
        type: 'proxy.created',
        alwaysStored: true,
        source: 'proxies',
        severity: 'INFO',
        message: `proxy ${proxy.domain} → ${proxy.destination} created`,
        details: { id: proxy.id, domain: proxy.domain, destination: proxy.destination, npmHostId: proxy.npmHostId },
      },
      actor,
    );
    return { proxy, validation };
  }

  /** Re-validates only a new destination; a change to nothing is no change (no write, no event). */
  async update(id: string, input: unknown, actor: Actor, signal?: AbortSignal): Promise<ProxyPayload> {
    const data = parseInput(updateProxySchema, input, 'input');
    const before = await this.find(id);
    if (!before) throw notFound('proxy', id);
    const domain = data.domain ?? before.domain;
    // The same destination written differently (e.g. a default port spelled out) is no change.
    const requested = data.destination === undefined ? undefined : parseDestination(data.destination);
    const sameDestination =
      requested === undefined || (requested.ok && requested.destination.url === before.destination);
    if (domain === before.domain && sameDestination) return { proxy: before, validation: NOT_REVALIDATED };
    if (!sameDestination && requested) {
      this.assertSyncable(requested);
      this.assertReachable(requested);
    }
    if (domain !== before.domain) {
      await this.assertDomainFree(domain, id);
      await this.options.npm?.claimDomain(domain, before.npmHostId, 'nothing was changed');
    }
    let validation = NOT_REVALIDATED;
    if (!sameDestination && data.destination !== undefined) {
      validation = await this.validate(data.destination, signal);
      if (!validation.ok) return { proxy: null, validation };
    }
    const destination = accepted(sameDestination ? parseDestination(before.destination) : requested);
    const moved = destination.url !== before.destination;

    const proxy = await this.exclusive(async () => {
      const current = await this.find(id);
      if (!current) throw notFound('proxy', id);
      if (current.updatedAt.getTime() !== before.updatedAt.getTime()) throw changedMeanwhile(id);
      if (domain !== current.domain) await this.assertDomainFree(domain, id);
      const { db, npm, settings } = this.options;
      // Conditional on `updatedAt`: a change another instance made since we read it is not overwritten.
      const write = async (synced: { npmHostId?: number; sslCertificateId?: number | null } = {}) => {
        const { count } = await withDomainConflict(domain, () =>
          db.proxy.updateMany({
            where: { id, updatedAt: current.updatedAt },
            data: { domain, destination: destination.url, ...(moved ? UNCHECKED : {}), ...synced },
          }),
        );
        if (count === 0) throw changedMeanwhile(id);
        return db.proxy.findUniqueOrThrow({ where: { id } });
      };
      if (!npm) return write();
      // Used only if the proxy has no NPM host yet (it gets one); an existing host keeps its certificate.
      const certificateId = current.sslCertificateId ?? (await settings.get()).sslCertificateId;
      return npm.update(current, domain, destination, certificateId, write);
    });
    if (moved) this.options.health.forget('PROXY', id);

    const changes: Record<string, unknown> = {};
    if (proxy.domain !== before.domain) changes.domain = proxy.domain;
    if (proxy.destination !== before.destination) changes.destination = proxy.destination;
    await this.options.events.record(
      {
        type: 'proxy.updated',
        alwaysStored: true,
        source: 'proxies',
        severity: 'INFO',
        message: `proxy ${proxy.domain} updated: ${Object.keys(changes).join(', ') || 'nothing changed'}`,
        details: { id, domain: proxy.domain, changes },
      },
      actor,
    );
    return { proxy, validation };
  }

  async delete(id: string, actor: Actor): Promise<string> {
    const existing = await this.find(id);
    if (!existing) throw notFound('proxy', id);
    const deleted = await this.exclusive(async () => {
      const current = await this.find(id);
      if (!current) throw notFound('proxy', id);
      const { db, npm } = this.options;
      const remove = async () => {
        try {
          return await db.proxy.delete({ where: { id } });
        } catch (error) {
          if (isRecordNotFound(error)) return null;
          throw error;
        }
      };
      const removed = npm ? await npm.delete(current, remove) : await remove();
      if (!removed) throw notFound('proxy', id);
      return removed;
    });
    this.options.health.forget('PROXY', id);
    await this.options.events.record(
      {
        type: 'proxy.deleted',
        alwaysStored: true,
        source: 'proxies',
        severity: 'INFO',
        message: `proxy ${deleted.domain} deleted`,
        details: { id, domain: deleted.domain, destination: deleted.destination, npmHostId: deleted.npmHostId },
      },
      actor,
    );
    return id;
  }

  /**
   * At shutdown, after the last request: changes under way finish, each as a whole (an NPM call,
   * its read-back, the database write, an undo), even when their client has gone; then the
   * connections to NPM close.
   */
  async close(): Promise<void> {
    await this.queue;
    await this.options.npm?.close();
  }

  /** StreamGate's proxies (creation order) merged with NPM's other proxy hosts. */
  async allProxies(): Promise<AllProxies> {
    const proxies = await this.options.db.proxy.findMany({ orderBy: { id: 'asc' } });
    return mergeListing(proxies, this.options.npm);
  }

  /**
   * Runs proxy changes one after another, so NPM and the database see them in the same order: in
   * this process (a queue), and across instances (the cluster's lock, when there are several).
   */
  private exclusive<T>(change: () => Promise<T>): Promise<T> {
    const across = this.options.exclusive;
    const section = across ? () => across(change) : change;
    const run = this.queue.then(section, section);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * NPM forwards the client's query string, and nginx cannot add one of its own to it: a destination
   * with a query cannot be synced, so it is refused before anything is probed.
   */
  /** A destination written as an IP the outbound policy refuses is bad input, before any probe. */
  private assertReachable(result: ParsedDestination): void {
    if (!result.ok) return;
    const { host, port } = result.destination;
    const refused = this.options.policy.checkLiteral(host, port);
    if (refused) throw badInput(`destination: refused by the outbound address policy: ${refused}`, 'input.destination');
  }

  private assertSyncable(result: ParsedDestination): void {
    if (!this.options.npm) return;
    if (result.ok && new URL(result.destination.url).search !== '') {
      throw badInput(
        'a destination with a query string cannot be synced to Nginx Proxy Manager (it forwards the client’s)',
        'input.destination',
      );
    }
  }

  private async assertDomainFree(domain: string, exceptId?: string): Promise<void> {
    const taken = await this.options.db.proxy.findUnique({ where: { domain }, select: { id: true } });
    if (taken && taken.id !== exceptId) throw domainTaken(domain);
  }
}

/** A destination the pipeline accepted (or that was stored after it did): its parsed form. */
function accepted(result: ParsedDestination | undefined): Destination {
  if (!result?.ok) throw new Error(`destination passed validation but does not parse: ${result?.detail}`);
  return result.destination;
}

export const domainTaken = (domain: string) => conflict(`a proxy for ${domain} already exists`, 'input.domain');

const changedMeanwhile = (id: string) =>
  appError('CONFLICT', `proxy ${id} was changed by someone else meanwhile; read it again and retry`);

/** The database's unique index on domain, as the API's CONFLICT (a create racing another). */
async function withDomainConflict<T>(domain: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error, 'Proxy', 'domain')) throw domainTaken(domain);
    throw error;
  }
}
