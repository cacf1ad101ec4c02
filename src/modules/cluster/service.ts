import { randomBytes } from 'node:crypto';
import { type Database, parsePostgresUrl } from '../../db/client.js';
import { ANY_TABLE } from '../../db/write-clock.js';
import { type Env, instanceId } from '../../env.js';
import type { Logger } from '../../lib/logger.js';
import type { EventBus, EventLogEntry } from '../events/index.js';
import type { HealthChange, HealthMonitor } from '../health/index.js';
import { Leadership } from './leader.js';
import { ClusterLink } from './link.js';
import { withClusterLock } from './lock.js';
import { RelayLink } from './relay-link.js';

export interface ClusterServiceOptions {
  env: Env;
  database: Database;
  log: Logger;
  events: EventBus;
  health: HealthMonitor;
}

/** One instance as the cluster knows it (`cluster` query, `/ready`). */
export interface ClusterInstance {
  id: string;
  leader: boolean;
  startedAt: Date;
  heartbeatAt: Date;
}

export interface ClusterStatus {
  /** This instance. */
  self: string;
  /** The leading instance's id, when one is known. */
  leader: string | null;
  /** Every instance with a recent heartbeat (this one first when Redis cannot be read). */
  instances: ClusterInstance[];
  /** Whether Redis answered this read (always true for one process). */
  redis: boolean;
}

/** How often the event log is read for what other instances stored, should a notice be lost. */
const CATCH_UP_MS = 5_000;
/** How often each instance says it is alive, and the leader lock is tried (or its connection checked). */
const HEARTBEAT_MS = 1_000;
/** An instance not heard of for this long is gone from the list. */
const GONE_AFTER_MS = 5 * HEARTBEAT_MS;

/**
 * The instances of one deployment (REDIS_URL with DATABASE_URL). Without REDIS_URL there is one
 * process and this service only reports it.
 *
 * With several: each committed write is announced (the tables it touched, coalesced per tick), so
 * the other instances' caches drop what changed (response cache, node directory, tokens, settings)
 * and their event buses publish what was stored; live-only events and health transitions travel
 * as they are; one instance leads (PostgreSQL advisory lock, leader.ts) and alone runs the
 * scheduled health checks and the retention purge.
 */
export class ClusterService {
  readonly instanceId: string;
  /** The live-session relay across instances; null for one process. */
  readonly relay: RelayLink | null;
  private readonly startedAt = new Date();
  private readonly link: ClusterLink | null;
  private readonly leadership: Leadership | null;
  /** DATABASE_URL without Prisma's `?schema=`, for the lock connections; null for one process. */
  private readonly connectionString: string | null;
  private readonly stops: (() => void)[] = [];
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly options: ClusterServiceOptions) {
    const { env, database, log, events, health } = options;
    this.instanceId = env.REDIS_URL ? `${instanceId(env)}/${randomBytes(3).toString('hex')}` : instanceId(env);
    if (!env.REDIS_URL || !env.DATABASE_URL) {
      this.link = null;
      this.relay = null;
      this.leadership = null;
      this.connectionString = null;
      return;
    }
    this.connectionString = parsePostgresUrl(env.DATABASE_URL).connectionString;
    this.link = new ClusterLink({
      url: env.REDIS_URL,
      instanceId: this.instanceId,
      deployment: database.location,
      log,
    });
    this.relay = new RelayLink(this.link, log);
    this.leadership = new Leadership({
      connectionString: this.connectionString,
      deployment: database.location,
      retryMs: HEARTBEAT_MS,
      log,
      onChange: (leading) => {
        health.lead(leading);
        this.beat();
      },
    });
    // Before any module starts: the monitor follows until this instance takes the lead, and only
    // the leader purges the event log.
    const link = this.link;
    health.share((change) => link.publish('health', change));
    events.purgeOnlyWhen(() => this.leadership?.isLeader ?? true);
  }

  get clustered(): boolean {
    return this.link !== null;
  }

  /**
   * Runs `section` while no other instance runs a section of the same name (one process: at once;
   * callers keep their own in-process order). Waits at most `waitMs` for the others.
   */
  exclusive<T>(name: string, waitMs: number, section: () => Promise<T>): Promise<T> {
    if (!this.connectionString) return section();
    return withClusterLock(this.connectionString, `${this.options.database.location}:${name}`, waitMs, section);
  }

  async start(): Promise<void> {
    const { link, leadership, relay } = this;
    if (!link || !leadership || !relay) return;
    const { database, events, health } = this.options;
    await link.start();
    const clock = database.writes;
    let announcing: Set<string> | null = null;
    this.stops.push(
      clock.onAdvance((notice) => {
        if (notice.remote) return;
        if (!announcing) {
          announcing = new Set();
          setImmediate(() => {
            const tables = [...(announcing ?? [])];
            announcing = null;
            link.publish('writes', { tables });
          });
        }
        for (const table of notice.tables) announcing.add(table);
      }),
      link.on('writes', (body) => clock.advance(tablesOf(body), true)),
      // Whatever was announced while Redis was away is lost: anything may have changed.
      link.onResume(() => clock.advance([ANY_TABLE], true)),
      link.on('events', (body) => events.deliverLive(body as EventLogEntry)),
      link.on('health', (body) => health.deliverRemote(body as HealthChange)),
    );
    // JSON has no bigint: the receiver gives the entry its own position anyway (deliverLive).
    await events.share((entry) => link.publish('events', { ...entry, position: entry.position.toString() }));
    this.stops.push(relay.start());
    const poll = setInterval(() => events.catchUp(), CATCH_UP_MS);
    poll.unref();
    this.stops.push(() => clearInterval(poll));
    leadership.start();
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.beat();
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const stop of this.stops.splice(0)) stop();
    await this.leadership?.stop();
    await this.link?.forget(this.instanceId);
    await this.link?.stop();
  }

  /** Who serves this deployment, and who leads. */
  async status(): Promise<ClusterStatus> {
    const self = this.describeSelf();
    if (!this.link) return { self: this.instanceId, leader: this.instanceId, instances: [self], redis: true };
    const listed = await this.link.instances(GONE_AFTER_MS).catch(() => null);
    const now = Date.now();
    const others = (listed ?? [])
      .map(instanceOf)
      .filter((i): i is ClusterInstance => i !== null && i.id !== this.instanceId)
      // A leader that has missed two heartbeats may be dead: its lock is free, or soon taken.
      .map((i) => (i.leader && now - i.heartbeatAt.getTime() > 2 * HEARTBEAT_MS ? { ...i, leader: false } : i));
    const instances = [self, ...others].sort((a, b) => a.id.localeCompare(b.id));
    const leader = instances.find((i) => i.leader)?.id ?? null;
    return { self: this.instanceId, leader, instances, redis: listed !== null };
  }

  private describeSelf(): ClusterInstance {
    return {
      id: this.instanceId,
      leader: this.leadership?.isLeader ?? true,
      startedAt: this.startedAt,
      heartbeatAt: new Date(),
    };
  }

  private beat(): void {
    const self = this.describeSelf();
    this.link?.announceSelf(self.id, { ...self, startedAt: self.startedAt.toISOString(), heartbeatAt: Date.now() });
  }
}

function tablesOf(body: unknown): string[] {
  const tables = (body as { tables?: unknown } | null)?.tables;
  return Array.isArray(tables) && tables.every((t) => typeof t === 'string') ? tables : [ANY_TABLE];
}

function instanceOf(raw: unknown): ClusterInstance | null {
  const r = raw as { id?: unknown; leader?: unknown; startedAt?: unknown; heartbeatAt?: unknown } | null;
  if (typeof r?.id !== 'string' || typeof r.heartbeatAt !== 'number' || typeof r.startedAt !== 'string') return null;
  return {
    id: r.id,
    leader: r.leader === true,
    startedAt: new Date(r.startedAt),
    heartbeatAt: new Date(r.heartbeatAt),
  };
}
