import { beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/client.js';
import { createTestDatabase } from '../helpers/db.js';
import { closedPort, type FakeNode, startFakeNode } from '../helpers/fake-node.js';
import { ACTOR, eventually, FakeSource, FakeSubject, type Harness, holdPings, startMonitor } from './helpers.js';

/**
 * The monitor driven one round at a time (checkAll: every subject checked once, results written),
 * so thresholds are asserted check by check. HEALTH_MONITOR=off: nothing runs in between.
 */

let h: Harness;
let db: Database;
let node: FakeNode;
const statements: string[] = [];
let counter = 0;

beforeAll(async () => {
  db = await createTestDatabase({ logQueries: true });
  (db.prisma as unknown as { $on(e: 'query', f: (q: { query: string }) => void): void }).$on('query', (q) =>
    statements.push(q.query),
  );
  h = await startMonitor({ db, env: { HEALTH_CHECK_TIMEOUT_MS: '300' } });
  node = await startFakeNode();
});

async function newNode(port = node.port, name = `n${++counter}`) {
  return db.prisma.node.create({ data: { kind: 'CACHE', name, host: '127.0.0.1', apiPort: port } });
}
const stored = (id: string) => db.prisma.node.findUnique({ where: { id } });
const changesOf = (id: string) => h.changes.filter((c) => c.subjectId === id).map((c) => `${c.from}->${c.to}`);

/** One round with the fake node answering `mode`. */
async function round(mode: FakeNode['ping']) {
  node.ping = mode;
  await h.monitor.checkAll();
}

describe('thresholds and transitions on a real node', () => {
  it('UNKNOWN -> HEALTHY on the first result; UNHEALTHY after exactly 3 failures; HEALTHY after 2 successes', async () => {
    const { id } = await newNode();
    expect((await stored(id))?.status).toBe('UNKNOWN');
    await round('up');
    const first = await stored(id);
    expect(first).toMatchObject({ status: 'HEALTHY', healthDetail: 'HTTP 200' });
    expect(first?.healthySince).toEqual(first?.lastPingedAt);
    expect(changesOf(id)).toEqual(['UNKNOWN->HEALTHY']);

    const seen: string[] = [];
    for (const mode of ['down', 'down', 'down', 'up', 'up'] as const) {
      await round(mode);
      seen.push((await stored(id))?.status ?? 'gone');
    }
    expect(seen).toEqual(['HEALTHY', 'HEALTHY', 'UNHEALTHY', 'UNHEALTHY', 'HEALTHY']);
    expect(changesOf(id)).toEqual(['UNKNOWN->HEALTHY', 'HEALTHY->UNHEALTHY', 'UNHEALTHY->HEALTHY']);
    const last = await stored(id);
    // Stored as last observed; uptime starts again at the recovery.
    expect(last).toMatchObject({ healthDetail: 'HTTP 200' });
    expect(last?.healthySince).toEqual(last?.lastPingedAt);
    expect(last?.healthySince?.getTime()).toBeGreaterThan(first?.healthySince?.getTime() ?? 0);
  });

  it('a flapping node causes no transition, and each real transition exactly one event (stream and log)', async () => {
    const { id } = await newNode();
    await round('up');
    for (let i = 0; i < 8; i++) await round(i % 2 ? 'up' : 'down');
    expect((await stored(id))?.status).toBe('HEALTHY');
    expect(changesOf(id)).toEqual(['UNKNOWN->HEALTHY']);
    for (let i = 0; i < 3; i++) await round('down');
    await round('down'); // steady state: nothing more
    expect(changesOf(id)).toEqual(['UNKNOWN->HEALTHY', 'HEALTHY->UNHEALTHY']);
    const logged = () =>
      h.logged.filter((e) => (e.details as { subjectId?: string }).subjectId === id).map((e) => e.type);
    await eventually(() => expect(logged()).toEqual(['health.changed', 'health.changed']));
    const down = h.logged.filter((e) => (e.details as { subjectId?: string }).subjectId === id)[1];
    expect(down).toMatchObject({
      severity: 'WARN',
      source: 'health',
      details: { subjectKind: 'NODE', from: 'HEALTHY', to: 'UNHEALTHY', detail: 'HTTP 503' },
    });
    // Transitions are stored whatever EVENT_LOG_MIN_SEVERITY says (INFO recoveries included).
    const rows = await db.prisma.eventLog.findMany({ where: { type: 'health.changed' } });
    expect(rows.filter((r) => (r.details as { subjectId?: string }).subjectId === id)).toHaveLength(2);
  });

  it('uses the thresholds in the settings, changed at run time', async () => {
    await h.settings.update({ healthFailureThreshold: 1, healthSuccessThreshold: 3 }, ACTOR);
    try {
      const { id } = await newNode();
      await round('up');
      await round('down');
      expect((await stored(id))?.status).toBe('UNHEALTHY');
      await round('up');
      await round('up');
      expect((await stored(id))?.status).toBe('UNHEALTHY');
      await round('up');
      expect((await stored(id))?.status).toBe('HEALTHY');
    } finally {
      await h.settings.update({ healthFailureThreshold: 3, healthSuccessThreshold: 2 }, ACTOR);
    }
  });

  it('manual checks share the state of scheduled ones: 2 scheduled failures + 1 manual = UNHEALTHY', async () => {
    const { id } = await newNode();
    await round('up');
    await round('down');
    await round('down');
    expect((await stored(id))?.status).toBe('HEALTHY');
    const manual = await h.monitor.checkNow(h.nodes, id);
    expect(manual).toMatchObject({ status: 'UNHEALTHY', result: { status: 'UNHEALTHY', detail: 'HTTP 503' } });
    // Written at once, not left for the next batch.
    expect((await stored(id))?.status).toBe('UNHEALTHY');
    expect(changesOf(id)).toEqual(['UNKNOWN->HEALTHY', 'HEALTHY->UNHEALTHY']);
    expect(await h.monitor.checkNow(h.nodes, '01a20000-0000-7000-8000-000000000000')).toBeNull();
  });

  it('a restarted monitor starts from the stored status: no transition is announced again', async () => {
    const { id } = await newNode();
    await round('up');
    const again = await startMonitor({ db, env: { HEALTH_CHECK_TIMEOUT_MS: '300' } });
    node.ping = 'down';
    await again.monitor.checkAll();
    await again.monitor.checkAll();
    expect(again.changes.filter((c) => c.subjectId === id)).toEqual([]);
    expect((await stored(id))?.status).toBe('HEALTHY');
    await again.monitor.checkAll();
    expect(again.changes.filter((c) => c.subjectId === id).map((c) => c.to)).toEqual(['UNHEALTHY']);
    await again.monitor.stop();
  });
});

describe('failing checks', () => {
  it('a node that never answers times out: UNHEALTHY with the reason', async () => {
    const { id } = await newNode();
    await round('hang');
    expect(await stored(id)).toMatchObject({ status: 'UNHEALTHY', healthDetail: 'no answer within 300 ms' });
  });

  it('a node with nothing listening is UNHEALTHY with the connection error', async () => {
    const { id } = await newNode(await closedPort());
    await h.monitor.checkAll();
    expect((await stored(id))?.healthDetail).toMatch(/ECONNREFUSED/);
  });

  it('a check that throws is an UNHEALTHY result with the error as detail; one that ignores its signal still times out', async () => {
    const source = new FakeSource('ROUTE');
    const throwing = new FakeSubject('throws', async () => {
      throw new Error('boom: no route to upstream');
    });
    const stuck = new FakeSubject('stuck', () => new Promise(() => {}));
    const nonsense = new FakeSubject('nonsense', async () => ({ status: 'MAYBE' }) as never);
    source.add(throwing, stuck, nonsense);
    h.monitor.register(source);
    await h.monitor.checkAll();
    const records = new Map(source.persisted.flat().map((r) => [r.subject.id, r]));
    expect(records.get('throws')).toMatchObject({
      status: 'UNHEALTHY',
      result: { status: 'UNHEALTHY', detail: 'boom: no route to upstream' },
    });
    expect(records.get('stuck')).toMatchObject({ status: 'UNHEALTHY', result: { detail: 'no answer within 300 ms' } });
    expect(records.get('nonsense')?.result.detail).toMatch(/^invalid check result/);
    expect(h.changes.filter((c) => c.subjectKind === 'ROUTE')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          subjectId: 'throws',
          from: 'UNKNOWN',
          to: 'UNHEALTHY',
          detail: 'boom: no route to upstream',
        }),
      ]),
    );
    // Nothing crashed: the nodes are still checked in the same rounds.
    const { id } = await newNode();
    await round('up');
    expect((await stored(id))?.status).toBe('HEALTHY');
    source.subjects.clear();
  });
});

describe('writes', () => {
  it('stores a round of results in ONE statement, however many nodes', async () => {
    for (let i = 0; i < 25; i++) await newNode();
    node.ping = 'up';
    const before = statements.length;
    await h.monitor.checkAll();
    const issued = statements.slice(before);
    expect(issued.filter((q) => /^\s*UPDATE "Node"/.test(q))).toHaveLength(1);
    const nodes = await db.prisma.node.count();
    expect(await db.prisma.node.count({ where: { lastPingedAt: null } })).toBe(0);
    expect(nodes).toBeGreaterThanOrEqual(25);
  });

  it('a node deleted while it is being checked gets no write (and is forgotten next round)', async () => {
    const { id } = await newNode();
    const held = holdPings(node);
    const checking = h.monitor.checkAll();
    await held.arrived;
    // As deleteNode does: the row goes, and the monitor is told at once.
    await db.prisma.node.delete({ where: { id } });
    h.monitor.forget('NODE', id);
    held.release();
    await checking;
    // The check that was under way produced nothing: no transition (the node answered, so it
    // would have been UNKNOWN -> HEALTHY), no event, no write.
    expect(h.changes.filter((c) => c.subjectId === id)).toEqual([]);
    expect(await stored(id)).toBeNull();
    expect(h.monitor.stats().writes.failures).toBe(0);
    await h.monitor.checkAll();
    expect(h.changes.filter((c) => c.subjectId === id)).toEqual([]);
    expect(await stored(id)).toBeNull();
  });

  it('a node deleted behind its back (another instance, SQL) gets no write: the UPDATE matches no row', async () => {
    const { id } = await newNode();
    const held = holdPings(node);
    const checking = h.monitor.checkAll();
    await held.arrived;
    await db.prisma.node.delete({ where: { id } });
    const before = statements.length;
    held.release();
    await checking;
    expect(statements.slice(before).filter((q) => /^\s*UPDATE "Node"/.test(q))).toHaveLength(1);
    expect(await stored(id)).toBeNull();
    expect(h.monitor.stats().writes.failures).toBe(0);
  });

  it("a node moved while it is being checked does not get the old address's result", async () => {
    const { id } = await newNode();
    const held = holdPings(node);
    const checking = h.monitor.checkAll();
    await held.arrived;
    const elsewhere = await closedPort();
    await db.prisma.node.update({ where: { id }, data: { apiPort: elsewhere } });
    held.release();
    await checking;
    expect(await stored(id)).toMatchObject({ status: 'UNKNOWN', lastPingedAt: null });
    // The next round checks (and stores) the new address.
    await h.monitor.checkAll();
    expect(await stored(id)).toMatchObject({ status: 'UNHEALTHY', apiPort: elsewhere });
  });
});
