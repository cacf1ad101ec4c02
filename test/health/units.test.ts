import { afterEach, describe, expect, it, vi } from 'vitest';
import { Overflow } from '../../src/lib/bounded-stream.js';
import { BatchWriter } from '../../src/modules/health/batch-writer.js';
import { ChangeHub } from '../../src/modules/health/hub.js';
import { firstDue, JITTER, nextDue, Schedule, Semaphore } from '../../src/modules/health/scheduler.js';
import { advance, type SubjectState, seedState, type Thresholds } from '../../src/modules/health/thresholds.js';
import type { CheckResult, HealthChange, HealthRecord, HealthSource } from '../../src/modules/health/types.js';
import { captureLog, FakeSource, FakeSubject, healthy } from './helpers.js';

const UP: CheckResult = { status: 'HEALTHY', latencyMs: 1, detail: 'HTTP 200' };
const DOWN: CheckResult = { status: 'UNHEALTHY', latencyMs: 1, detail: 'HTTP 503' };
const T: Thresholds = { failures: 3, successes: 2 };

/** Feeds results one by one; returns the status after each and the transitions. */
function run(results: CheckResult[], thresholds = T, start: SubjectState = seedState(undefined, thresholds)) {
  let state = start;
  const statuses: string[] = [];
  const transitions: string[] = [];
  results.forEach((result, i) => {
    const next = advance(state, result, thresholds, new Date(1000 * (i + 1)));
    if (next.changed) transitions.push(`${state.status}->${next.state.status}@${i + 1}`);
    state = next.state;
    statuses.push(state.status);
  });
  return { statuses, transitions, state };
}

describe('thresholds', () => {
  it('UNKNOWN until the first result, which decides at once (either way)', () => {
    expect(seedState(undefined, T).status).toBe('UNKNOWN');
    expect(run([UP]).transitions).toEqual(['UNKNOWN->HEALTHY@1']);
    expect(run([DOWN]).transitions).toEqual(['UNKNOWN->UNHEALTHY@1']);
  });

  it('HEALTHY -> UNHEALTHY after exactly 3 consecutive failures, back after exactly 2 successes', () => {
    const { statuses, transitions } = run([UP, DOWN, DOWN, DOWN, UP, UP]);
    expect(statuses).toEqual(['HEALTHY', 'HEALTHY', 'HEALTHY', 'UNHEALTHY', 'UNHEALTHY', 'HEALTHY']);
    expect(transitions).toEqual(['UNKNOWN->HEALTHY@1', 'HEALTHY->UNHEALTHY@4', 'UNHEALTHY->HEALTHY@6']);
  });

  it('a success resets the failure count (and a failure the success count)', () => {
    const { transitions } = run([UP, DOWN, DOWN, UP, DOWN, DOWN, UP, DOWN, DOWN, DOWN, UP, DOWN, UP, UP]);
    expect(transitions).toEqual(['UNKNOWN->HEALTHY@1', 'HEALTHY->UNHEALTHY@10', 'UNHEALTHY->HEALTHY@14']);
  });

  it('a flapping subject (alternating) never changes status', () => {
    const alternating = Array.from({ length: 40 }, (_, i) => (i % 2 ? DOWN : UP));
    expect(run(alternating).transitions).toEqual(['UNKNOWN->HEALTHY@1']);
  });

  it('takes the thresholds it is given', () => {
    const one = { failures: 1, successes: 1 };
    expect(run([UP, DOWN, UP], one).transitions).toEqual([
      'UNKNOWN->HEALTHY@1',
      'HEALTHY->UNHEALTHY@2',
      'UNHEALTHY->HEALTHY@3',
    ]);
    const five = { failures: 5, successes: 4 };
    expect(run([UP, DOWN, DOWN, DOWN, DOWN, DOWN, UP, UP, UP, UP], five).transitions).toEqual([
      'UNKNOWN->HEALTHY@1',
      'HEALTHY->UNHEALTHY@6',
      'UNHEALTHY->HEALTHY@10',
    ]);
  });

  it('healthySince is the time of the transition to HEALTHY, kept while healthy, null otherwise', () => {
    let s = seedState(undefined, T);
    s = advance(s, UP, T, new Date(5000)).state;
    expect(s.healthySince).toEqual(new Date(5000));
    s = advance(s, DOWN, T, new Date(6000)).state;
    s = advance(s, UP, T, new Date(7000)).state;
    expect(s.healthySince).toEqual(new Date(5000));
    for (const t of [8000, 9000, 10000]) s = advance(s, DOWN, T, new Date(t)).state;
    expect(s).toMatchObject({ status: 'UNHEALTHY', healthySince: null });
  });

  it('seeds from what is stored, so a restart announces nothing new and keeps the thresholds', () => {
    const since = new Date(1234);
    const healthy = seedState({ status: 'HEALTHY', healthySince: since }, T);
    expect(healthy).toMatchObject({ status: 'HEALTHY', healthySince: since });
    const afterRestart = run([UP, DOWN, DOWN, UP], T, healthy);
    expect(afterRestart.transitions).toEqual([]);
    expect(afterRestart.state.healthySince).toBe(since);
    // A stored UNHEALTHY subject needs the full success threshold to recover, no announcement before.
    expect(run([UP, UP], T, seedState({ status: 'UNHEALTHY', healthySince: null }, T)).transitions).toEqual([
      'UNHEALTHY->HEALTHY@2',
    ]);
  });
});

describe('scheduling arithmetic', () => {
  it('places a new subject within the next interval, and each next round one interval ±10% later', () => {
    expect(firstDue(100, 1000, () => 0)).toBe(100);
    expect(firstDue(100, 1000, () => 0.999)).toBeCloseTo(1099);
    expect(nextDue(1000, 1000, 1000, () => 0)).toBeCloseTo(1000 + 1000 * (1 - JITTER));
    expect(nextDue(1000, 1000, 1000, () => 1)).toBeCloseTo(1000 + 1000 * (1 + JITTER));
    expect(nextDue(1000, 1000, 1000, () => 0.5)).toBeCloseTo(2000);
  });

  it('spreads a subject that fell more than an interval behind over the next interval instead of bursting', () => {
    expect(nextDue(0, 1000, 10_000, () => 0.25)).toBe(10_250);
  });
});

describe('Schedule (fake clock)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('spreads subjects over the interval, then repeats each one interval ±10% later', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const randoms = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95];
    // Placement takes the first ten; every later round's jitter is +8%.
    let r = 0;
    const random = () => (r < randoms.length ? randoms[r++]! : 0.9);
    const fired: { key: string; at: number; due: number }[] = [];
    const schedule = new Schedule(1000, (key, due) => fired.push({ key, at: performance.now(), due }), random);
    const t0 = performance.now();
    schedule.start();
    for (let i = 0; i < 10; i++) schedule.add(`s${i}`);
    // One per 100 ms, in order: no herd.
    for (let step = 1; step <= 10; step++) {
      vi.advanceTimersByTime(100);
      expect(fired.length, `after ${step * 100} ms`).toBe(step);
    }
    expect(fired.map((f) => f.key)).toEqual(Array.from({ length: 10 }, (_, i) => `s${i}`));
    expect(fired.map((f) => Math.round(f.due - t0))).toEqual([50, 150, 250, 350, 450, 550, 650, 750, 850, 950]);
    vi.advanceTimersByTime(200);
    expect(fired.slice(10).map((f) => f.key)).toEqual(['s0']);
    expect(fired[10]!.due - fired[0]!.due).toBeCloseTo(1080);
    // Drift is measurable: each call happens at or after its due time.
    for (const f of fired) expect(f.at).toBeGreaterThanOrEqual(f.due);
    schedule.stop();
  });

  it('removing a key stops its rounds; retime spreads everything over the new interval at once', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const fired: string[] = [];
    const schedule = new Schedule(
      60_000,
      (key) => fired.push(key),
      () => 0.5,
    );
    schedule.start();
    schedule.add('a');
    schedule.add('b');
    schedule.remove('b');
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual([]);
    schedule.retime(100); // due 50 ms from now, not 29 s
    vi.advanceTimersByTime(60);
    expect(fired).toEqual(['a']);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['a', 'a']);
    schedule.stop();
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual(['a', 'a']);
  });
});

describe('Semaphore', () => {
  it('admits at most `limit` holders; the rest wait in order; cancel turns waiters away', async () => {
    const slots = new Semaphore(2);
    const order: string[] = [];
    expect(await slots.acquire()).toBe(true);
    expect(await slots.acquire()).toBe(true);
    const third = slots.acquire().then((ok) => order.push(`third ${ok}`));
    const fourth = slots.acquire().then((ok) => order.push(`fourth ${ok}`));
    await Promise.resolve();
    expect(slots.inUse).toBe(2);
    expect(order).toEqual([]);
    slots.release();
    await third;
    expect(order).toEqual(['third true']);
    expect(slots.inUse).toBe(2);
    slots.cancel();
    await fourth;
    expect(order).toEqual(['third true', 'fourth false']);
  });
});

const change = (n: number, kind: HealthChange['subjectKind'] = 'NODE'): HealthChange => ({
  subjectKind: kind,
  subjectId: `id${n}`,
  name: `n${n}`,
  from: 'HEALTHY',
  to: 'UNHEALTHY',
  at: new Date(n),
  latencyMs: null,
  detail: null,
});

describe('ChangeHub', () => {
  it('filters by kind, and ends a subscriber that falls behind its limit with one Overflow marker', async () => {
    const hub = new ChangeHub(2);
    const nodes = hub.subscribe(['NODE']);
    const proxies = hub.subscribe(['PROXY']);
    const all = hub.subscribe(null);
    hub.publish(change(1));
    hub.publish(change(2, 'PROXY'));
    expect((await proxies.next()).value).toMatchObject({ subjectId: 'id2' });
    expect((await all.next()).value).toMatchObject({ subjectId: 'id1' });
    expect((await all.next()).value).toMatchObject({ subjectId: 'id2' });
    hub.publish(change(3));
    hub.publish(change(4)); // `nodes` now holds 1, 3, and 4 would be a third
    expect(hub.size).toBe(2);
    expect(await nodes.next()).toEqual({ done: false, value: new Overflow({ items: 2, weight: 0 }, 2) });
    expect(await nodes.next()).toEqual({ done: true, value: undefined });
    hub.close();
    expect((await all.next()).value).toMatchObject({ subjectId: 'id3' });
    expect((await all.next()).value).toMatchObject({ subjectId: 'id4' });
    expect((await all.next()).done).toBe(true);
    expect(hub.size).toBe(0);
    // After close (shutdown), a new subscriber ends at once instead of waiting for ever.
    expect(await hub.subscribe(null).next()).toEqual({ done: true, value: undefined });
  });
});

describe('BatchWriter', () => {
  const record = (subject: FakeSubject, status: 'HEALTHY' | 'UNHEALTHY', at: number): HealthRecord => ({
    subject,
    result: { status, latencyMs: 1, detail: null },
    checkedAt: new Date(at),
    status,
    healthySince: null,
  });

  it('writes one statement per batch of maxBatch records; a newer result replaces an older pending one', async () => {
    const source = new FakeSource();
    const subjects = Array.from({ length: 5 }, (_, i) => new FakeSubject(`s${i}`, healthy));
    const writer = new BatchWriter({ log: captureLog().log, flushMs: 60_000, maxBatch: 2, onOutage: () => {} });
    for (const s of subjects) writer.add(source, record(s, 'HEALTHY', 1));
    writer.add(source, record(subjects[0]!, 'UNHEALTHY', 2));
    expect(writer.pendingCount).toBe(5);
    await writer.flush();
    expect(source.persisted.map((batch) => batch.length)).toEqual([2, 2, 1]);
    expect(source.persisted.flat().find((r) => r.subject.id === 's0')?.status).toBe('UNHEALTHY');
    expect(writer.stats).toMatchObject({ statements: 3, rows: 5, failures: 0 });
    expect(writer.pendingCount).toBe(0);
  });

  it('keeps a failed batch (unless newer results came meanwhile), reports the outage once, retries', async () => {
    const source = new FakeSource() as FakeSource & HealthSource;
    const persist = source.persist.bind(source);
    let down = true;
    const hold: { release?: () => void } = {};
    const releaseHeld = () => hold.release?.();
    source.persist = async (records) => {
      if (down) {
        await new Promise<void>((r) => {
          hold.release = r;
        });
        throw new Error('database unavailable');
      }
      return persist(records);
    };
    const outages: number[] = [];
    const { log, lines } = captureLog();
    const writer = new BatchWriter({ log, flushMs: 60_000, maxBatch: 10, onOutage: (_, n) => outages.push(n) });
    const [a, b] = [new FakeSubject('a', healthy), new FakeSubject('b', healthy)];
    writer.add(source, record(a, 'HEALTHY', 1));
    writer.add(source, record(b, 'HEALTHY', 1));
    const failing = writer.flush();
    await vi.waitFor(() => expect(hold.release).toBeDefined());
    writer.add(source, record(a, 'UNHEALTHY', 2)); // arrives while the write is failing
    releaseHeld();
    await failing;
    expect(outages).toEqual([2]);
    expect(lines.some((l) => l.level === 50 && l.msg.includes('storing health results failed'))).toBe(true);
    expect(writer.pendingCount).toBe(2);
    hold.release = undefined;
    const second = writer.flush();
    await vi.waitFor(() => expect(hold.release).toBeDefined());
    releaseHeld();
    await second;
    expect(outages).toEqual([2]); // once per outage, not per attempt
    down = false;
    await writer.flush();
    const written = source.persisted.flat();
    expect(written.map((r) => `${r.subject.id}:${r.status}`).sort()).toEqual(['a:UNHEALTHY', 'b:HEALTHY']);
    expect(writer.pendingCount).toBe(0);
    expect(lines.some((l) => l.msg.includes('stored again'))).toBe(true);
  });

  it('writes what is pending on close, and nothing after', async () => {
    const source = new FakeSource();
    const writer = new BatchWriter({ log: captureLog().log, flushMs: 60_000, maxBatch: 10, onOutage: () => {} });
    writer.add(source, record(new FakeSubject('a', healthy), 'HEALTHY', 1));
    await writer.close();
    expect(source.persisted.flat()).toHaveLength(1);
    writer.add(source, record(new FakeSubject('b', healthy), 'HEALTHY', 2));
    await writer.flush();
    await expect(writer.writeNow(source, record(new FakeSubject('c', healthy), 'HEALTHY', 3))).rejects.toThrow(
      /stopped/,
    );
    expect(source.persisted.flat()).toHaveLength(1);
  });
});
