import diagnostics from 'node:diagnostics_channel';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/client.js';
import type { CheckMessage } from '../../src/modules/health/diagnostics.js';
import { createTestDatabase, TEST_DATABASE_URL } from '../helpers/db.js';
import { type FakeNode, startFakeNode } from '../helpers/fake-node.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import {
  ACTOR,
  eventually,
  FakeSource,
  FakeSubject,
  gate,
  type Harness,
  healthy,
  sleep,
  startMonitor,
} from './helpers.js';

/**
 * The scheduler running for real, with intervals shrunk by the `secondMs` knob (one setting
 * second = a few ms). Assertions wait for what must eventually happen; none measure time.
 */

const messages: CheckMessage[] = [];
const onCheck = (message: unknown) => messages.push(message as CheckMessage);
diagnostics.subscribe('streamgate:health:check', onCheck);
afterAll(() => {
  diagnostics.unsubscribe('streamgate:health:check', onCheck);
});

/** One database for the file (opening one costs most of a second); each test starts clean. */
let shared: Database;
const statements: string[] = [];
const running: Harness[] = [];
beforeAll(async () => {
  shared = await createTestDatabase({ logQueries: true });
  (shared.prisma as unknown as { $on(e: 'query', f: (q: { query: string }) => void): void }).$on('query', (q) =>
    statements.push(q.query),
  );
});
beforeEach(async () => {
  await shared.prisma.node.deleteMany();
  await shared.prisma.settings.update({
    where: { id: 1 },
    data: { healthCheckIntervalSeconds: 1, healthFailureThreshold: 3, healthSuccessThreshold: 2 },
  });
});
// A test's monitors stop with it, so the next test's nodes are nobody else's.
afterEach(async () => {
  for (const h of running.splice(0)) await h.monitor.stop();
});

async function monitor(opts: Parameters<typeof startMonitor>[0]): Promise<Harness> {
  const h = await startMonitor({ db: shared, ...opts });
  running.push(h);
  return h;
}

async function nodesOn(db: Database, node: FakeNode, n: number, prefix: string) {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const row = await db.prisma.node.create({
      data: { kind: 'SLB', name: `${prefix}-${i}`, host: '127.0.0.1', apiPort: node.port },
    });
    ids.push(row.id);
  }
  return ids;
}

/** A started monitor checking every 100 ms (interval setting 1 s, 1 s = 100 ms). */
async function fastMonitor(opts: { db?: Database; env?: Record<string, string>; flushMs?: number } = {}) {
  const db = opts.db ?? shared;
  await db.prisma.settings.update({ where: { id: 1 }, data: { healthCheckIntervalSeconds: 1 } });
  return monitor({
    db,
    env: { HEALTH_MONITOR: 'on', ...opts.env },
    timing: { secondMs: 100, flushMs: opts.flushMs ?? 50 },
    start: true,
  });
}

describe('scheduled checks', () => {
  it('checks every node again and again, picks up new nodes and forgets deleted ones', async () => {
    const node = await startFakeNode();
    const db = shared;
    const ids = await nodesOn(db, node, 5, 'sched');
    const h = await fastMonitor();
    await eventually(async () => {
      const rows = await db.prisma.node.findMany({ where: { id: { in: ids } } });
      expect(rows.map((r) => r.status)).toEqual(Array(5).fill('HEALTHY'));
    });
    const pinged = () => node.requests.filter((r) => r.url === '/api/ping').length;
    const before = pinged();
    await eventually(() => expect(pinged()).toBeGreaterThanOrEqual(before + 10));
    // Scheduled checks are measured: drift (start minus due time) is never negative.
    const mine = messages.filter((m) => ids.includes(m.id));
    expect(mine.length).toBeGreaterThan(0);
    for (const m of mine) expect(m.driftMs).toBeGreaterThanOrEqual(0);
    expect(h.monitor.stats().maxDriftMs).toBeGreaterThanOrEqual(0);

    const [added] = await nodesOn(db, node, 1, 'sched-new');
    await eventually(async () =>
      expect((await db.prisma.node.findUnique({ where: { id: added! } }))?.status).toBe('HEALTHY'),
    );
    expect(h.monitor.stats().subjects).toBe(6);
    await db.prisma.node.delete({ where: { id: ids[0]! } });
    await eventually(() => expect(h.monitor.stats().subjects).toBe(5));
    expect(await db.prisma.node.findUnique({ where: { id: ids[0]! } })).toBeNull();
    // Steady state: one transition per node, whatever the number of rounds.
    expect(h.changes.map((c) => c.to)).toEqual(Array(6).fill('HEALTHY'));
  });

  it('runs at most HEALTH_CHECK_CONCURRENCY checks at once, the others wait their turn', async () => {
    const h = await fastMonitor({ env: { HEALTH_CHECK_CONCURRENCY: '3', HEALTH_CHECK_TIMEOUT_MS: '10000' } });
    const open = gate();
    let running = 0;
    let most = 0;
    const source = new FakeSource('PROXY');
    for (let i = 0; i < 12; i++) {
      source.add(
        new FakeSubject(`p${i}`, async () => {
          most = Math.max(most, ++running);
          await open.promise;
          running--;
          return healthy();
        }),
      );
    }
    h.monitor.register(source);
    await eventually(() => expect(running).toBe(3));
    await sleep(300); // three intervals: every subject has fallen due meanwhile
    expect(running).toBe(3);
    open.open();
    await eventually(() => expect([...source.subjects.values()].every((s) => s.checks >= 2)).toBe(true));
    expect(most).toBe(3);
    expect(h.monitor.stats().maxInFlight).toBe(3);
  });

  it('takes a new interval from the settings at once, without a restart', async () => {
    const node = await startFakeNode();
    const db = shared;
    await nodesOn(db, node, 3, 'retime');
    await db.prisma.settings.update({ where: { id: 1 }, data: { healthCheckIntervalSeconds: 3600 } });
    // 3600 "seconds" of 10 ms: every node is first due 35.6 s after start.
    const h = await monitor({
      env: { HEALTH_MONITOR: 'on' },
      timing: { secondMs: 10, flushMs: 20, random: () => 0.99 },
      start: true,
    });
    await eventually(() => expect(h.monitor.stats().scheduled).toBe(3));
    await sleep(200);
    expect(h.monitor.stats().checks).toBe(0);
    await h.settings.update({ healthCheckIntervalSeconds: 1 }, ACTOR);
    expect(h.monitor.stats().intervalMs).toBe(10);
    await eventually(() => expect(h.monitor.stats().checks).toBeGreaterThanOrEqual(9));
    await eventually(async () => expect(await db.prisma.node.count({ where: { status: 'HEALTHY' } })).toBe(3));
  });

  it('HEALTH_MONITOR=off: no scheduled check at all, while a manual check still works', async () => {
    const node = await startFakeNode();
    const [id] = await nodesOn(shared, node, 2, 'off');
    const h = await monitor({ env: { HEALTH_MONITOR: 'off' }, timing: { secondMs: 10 }, start: true });
    await sleep(300); // thirty intervals
    expect(node.requests).toEqual([]);
    expect(h.monitor.stats()).toMatchObject({ checks: 0, scheduled: 0 });
    expect(await h.monitor.checkNow(h.nodes, id!)).toMatchObject({ status: 'HEALTHY' });
    expect(node.requests.map((r) => r.url)).toEqual(['/api/ping']);
  });
});

describe('the database unavailable during batch writes', () => {
  /**
   * Logged, the monitor keeps checking, results stay pending (one per node, the newest), and the
   * first write after the database is back stores them.
   */
  async function outage(db: Database, cut: () => Promise<void>, restore: () => Promise<void>) {
    const node = await startFakeNode();
    const [id] = await nodesOn(db, node, 1, 'outage');
    const h = await fastMonitor({ db, env: { HEALTH_CHECK_TIMEOUT_MS: '1000' } });
    await eventually(async () =>
      expect((await db.prisma.node.findUnique({ where: { id: id! } }))?.status).toBe('HEALTHY'),
    );
    await cut();
    try {
      node.ping = 'down';
      await eventually(() => expect(h.monitor.stats().writes.failures).toBeGreaterThanOrEqual(2));
      const checks = h.monitor.stats().checks;
      await eventually(() => expect(h.monitor.stats().checks).toBeGreaterThan(checks + 3));
      // One unstored result per subject (the newest), however many checks ran meanwhile.
      expect(h.monitor.stats().pendingWrites).toBe(1);
      expect(h.lines.some((l) => l.level === 50 && l.msg.includes('storing health results failed'))).toBe(true);
      await eventually(() => expect(h.logged.filter((e) => e.type === 'health.write_failed')).toHaveLength(1));
      // Meanwhile the node went down for good: the monitor knows, the database does not yet.
      await eventually(() => expect(h.changes.map((c) => c.to)).toEqual(['HEALTHY', 'UNHEALTHY']));
    } finally {
      await restore();
    }
    const back = new Date();
    await eventually(async () => {
      const row = await db.prisma.node.findUnique({ where: { id: id! } });
      expect(row?.status).toBe('UNHEALTHY');
      expect(row?.lastPingedAt?.getTime()).toBeGreaterThanOrEqual(back.getTime() - 1000);
    });
    expect(h.lines.some((l) => l.msg.includes('stored again'))).toBe(true);
    // One outage, one event: not one per failed attempt.
    expect(h.logged.filter((e) => e.type === 'health.write_failed')).toHaveLength(1);
    await h.monitor.stop();
  }

  it('(any database) the Node table unreachable: writes fail, then succeed once it is back', async () => {
    const db = shared;
    // A real failure of the real statement: the table the batch writes to is gone for a while.
    await outage(
      db,
      async () => {
        await db.prisma.$executeRawUnsafe('ALTER TABLE "Node" RENAME TO "NodeAway"');
      },
      async () => {
        await db.prisma.$executeRawUnsafe('ALTER TABLE "NodeAway" RENAME TO "Node"');
      },
    );
  });

  // Defined in the PostgreSQL pass only (the embedded database has no network to cut).
  const onPostgres = TEST_DATABASE_URL ? it : () => {};
  onPostgres('(PostgreSQL) the network to the database cut: writes fail, then succeed once it is back', async () => {
    const proxy = await startTcpProxy(Number(new URL(TEST_DATABASE_URL ?? 'postgres://x:5432').port || 5432));
    const db = await createTestDatabase({ viaPort: proxy.port });
    await outage(
      db,
      async () => proxy.cut(),
      async () => proxy.restore(),
    );
  });
});

describe('stop()', () => {
  it('aborts running checks and waits for them, writes what is pending, then writes nothing more', async () => {
    const up = await startFakeNode();
    const hung = await startFakeNode();
    hung.ping = 'hang';
    const db = shared;
    let aborted = 0;
    hung.override = (req, res) => {
      if (!req.url?.startsWith('/api/ping')) return false;
      // Never answered; its connection closing is the monitor's abort reaching the node.
      res.once('close', () => aborted++);
      return true;
    };
    const [fine] = await nodesOn(db, up, 1, 'stop-up');
    const [stuck] = await nodesOn(db, hung, 1, 'stop-hung');
    // Results wait a minute for their batch, checks a minute for an answer: stop() must not.
    const h = await fastMonitor({ db, env: { HEALTH_CHECK_TIMEOUT_MS: '60000' }, flushMs: 60_000 });
    await eventually(() => expect(h.monitor.stats().pendingWrites).toBe(1));
    await eventually(() => expect(hung.requests.length).toBeGreaterThan(0));
    expect(aborted).toBe(0);
    await h.monitor.stop();
    expect(h.monitor.stats()).toMatchObject({ inFlight: 0, pendingWrites: 0 });
    await eventually(() => expect(aborted).toBe(hung.requests.length));
    const rows = await db.prisma.node.findMany({ where: { id: { in: [fine!, stuck!] } } });
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(fine!)).toMatchObject({ status: 'HEALTHY' });
    // The aborted check is no result: the node is not marked down because we stopped.
    expect(byId.get(stuck!)).toMatchObject({ status: 'UNKNOWN', lastPingedAt: null });
    const after = statements.length;
    await sleep(300);
    expect(statements.slice(after).filter((q) => q.includes('"Node"'))).toEqual([]);
    await expect(h.monitor.checkNow(h.nodes, fine!)).rejects.toThrow(/stopped/);
    await h.monitor.stop(); // idempotent
  });
});
