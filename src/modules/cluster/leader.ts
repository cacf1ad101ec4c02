import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../../lib/logger.js';

export interface LeadershipOptions {
  /** The deployment's PostgreSQL (without Prisma's `?schema=`). */
  connectionString: string;
  /**
   * What the instances of one deployment share (the database's location, schema included):
   * advisory locks are per database, so the lock's key is made from it and two deployments in one
   * database (two schemas) each have their own leader.
   */
  deployment: string;
  /** How often a follower tries to take the lock, and the leader checks its connection. */
  retryMs: number;
  log: Logger;
  onChange: (leading: boolean) => void;
}

/** The first half of the two-key advisory lock: "SG". */
const LOCK_CLASS = 0x5347;

/**
 * One leader among the instances: whoever holds a PostgreSQL session advisory lock on a dedicated
 * connection. The lock lives exactly as long as that connection: a leader killed with `kill -9`
 * (or cut off) loses it as soon as PostgreSQL sees the connection close, and another instance takes
 * it at its next try, within `retryMs`. The leader checks its connection on the same period; when
 * that fails it stops leading at once (it may already have lost the lock).
 */
export class Leadership {
  private client: pg.Client | null = null;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> | undefined;
  private readonly lockKey: number;

  constructor(private readonly options: LeadershipOptions) {
    this.lockKey = createHash('sha256').update(options.deployment).digest().readInt32BE(0);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.ticking = this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    const client = this.client;
    this.client = null;
    if (client) {
      // Ending the session releases the lock; the next leader need not wait for a timeout.
      await client.end().catch(() => {});
    }
    this.set(false);
  }

  private async tick(): Promise<void> {
    try {
      const client = await this.connection();
      if (this.leading) {
        await client.query('SELECT 1');
      } else {
        const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [
          LOCK_CLASS,
          this.lockKey,
        ]);
        if (rows[0]?.ok && !this.stopped) this.set(true);
      }
    } catch (error) {
      this.options.log.warn({ err: error }, 'leader lock: database connection failed; trying again');
      this.drop();
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick();
    }, this.options.retryMs);
    this.timer.unref();
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      application_name: 'streamgate-leader',
    });
    client.on('error', () => this.drop());
    this.client = client;
    try {
      await client.connect();
    } catch (error) {
      this.client = null;
      throw error;
    }
    return client;
  }

  /** The connection is gone or unusable: so is the lock. */
  private drop(): void {
    const client = this.client;
    this.client = null;
    client?.end().catch(() => {});
    this.set(false);
  }

  private set(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.options.log.info(
      leading ? 'this instance now leads (health checks, retention purge)' : 'this instance no longer leads',
    );
    this.options.onChange(leading);
  }
}
