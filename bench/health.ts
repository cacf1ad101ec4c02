/**
 * Health monitor benchmark: 5,000 nodes checked every 30 s while the API serves GraphQL queries,
 * against the same app with the monitor off, in one run (ratios, on a noisy shared machine).
 *
 * What runs, each in its own process (this file, forked with a role argument):
 *   - targets     BENCH_TARGETS small node:http servers on 127.0.0.1 answering `GET /api/ping`
 *                 with 200 and a tiny JSON body (the nodes' APIs);
 *   - streamgate  the real app (`createApp`) over an in-memory PGlite migrated with
 *                 `applyMigrations`, NODE_ENV=production, LOG_LEVEL=silent, BENCH_SUBJECTS nodes
 *                 (distinct names, a third of each kind, spread over the targets, stored HEALTHY as after a restart:
 *                 steady state), `healthCheckIntervalSeconds` 30 (the default), HEALTH_MONITOR
 *                 on or off. It measures itself: event-loop delay (`perf_hooks.monitorEventLoopDelay`,
 *                 10 ms resolution; its figures are the intervals between ticks, so an idle loop
 *                 reads ≈10 ms: the lateness is the figure minus 10, reported as is), and through the monitor's diagnostics channels
 *                 (`streamgate:health:check`, `streamgate:health:write`) every check's scheduling
 *                 drift (start minus due time) and every batch write; RSS from process.memoryUsage;
 *   - load        the GraphQL client (undici Pool, keep-alive): `cacheNodes(first: 20) { … status
 *                 health { … } }`, i.e. Yoga, Prisma and PGlite on every query.
 * Phases: the app with the monitor off, then on (BENCH_ROUNDS times; a fresh app process per
 * phase and one app alive at a time, so the two never share the cores). In each phase, after a
 * BENCH_WARMUP_SECONDS warm-up (the monitor's first round is spread over the interval by then):
 *   1. saturated  closed loop, BENCH_CONNECTIONS connections each sending its next query as soon
 *                 as the answer is read, for BENCH_SECONDS: queries/s, the throughput figure;
 *   2. paced      open loop at BENCH_RATE queries/s for BENCH_PACED_SECONDS (default 35: every
 *                 node is checked at least once in it): event-loop delay and query latency. A
 *                 saturated loop's delay measures the load generator's own backlog (N queries' worth
 *                 of synchronous PGlite work per loop turn), not the monitor: both are reported.
 * Drift, checks and writes are counted over both segments.
 *
 * Run: `npx tsx bench/health.ts` (~2.5 minutes with the defaults; only 127.0.0.1).
 * Knobs: BENCH_SUBJECTS (5000), BENCH_SECONDS (20), BENCH_PACED_SECONDS (35), BENCH_RATE (100),
 * BENCH_WARMUP_SECONDS (5), BENCH_ROUNDS (1), BENCH_CONNECTIONS (16), BENCH_TARGETS (4),
 * BENCH_INTERVAL_SECONDS (30).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import type { Database } from '../src/db/client.js';
import { stopChild } from './lib/children.js';
import { BENCH_TOKEN, startBenchStreamGate } from './lib/streamgate.js';

const SUBJECTS = Number(process.env.BENCH_SUBJECTS ?? 5000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const PACED_SECONDS = Number(process.env.BENCH_PACED_SECONDS ?? 35);
const RATE = Number(process.env.BENCH_RATE ?? 100);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const TARGETS = Number(process.env.BENCH_TARGETS ?? 4);
const INTERVAL_SECONDS = Number(process.env.BENCH_INTERVAL_SECONDS ?? 30);
const WATCHDOG_MS = (ROUNDS * 2 * (SECONDS + PACED_SECONDS + WARMUP_SECONDS + 60) + 60) * 1000;

const TOKEN = BENCH_TOKEN;
/** Nodes of every kind, as a real registry has; the query lists one kind's first page. */
const KINDS = ['STREAMER', 'CACHE', 'SLB'] as const;
const HOST = '127.0.0.1';
const QUERY = JSON.stringify({
  query: '{ cacheNodes(first: 20) { edges { node { id name status health { status latencyMs uptimeSeconds } } } } }',
});

type Role = 'targets' | 'streamgate' | 'load';

interface LoadJob {
  url: string;
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** Open loop at this many queries/s; closed loop when absent. */
  rate?: number;
}

interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

/** What the app process measured over one window. */
interface AppStats {
  checks: number;
  failedChecks: number;
  drift: { p50: number; p99: number; max: number };
  loop: { p50: number; p99: number; max: number };
  writes: number;
  /** Duration of the batch writes (ms): on PGlite, time the event loop is blocked. */
  writeMs: { p50: number; max: number };
  writtenRows: number;
  failedWrites: number;
  rssMb: number;
  /** The app process's CPU time (user + system) over the window, ms. */
  cpuMs: number;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

/** The nodes' APIs: `GET /api/ping` → 200. */
async function runTargets(): Promise<{ ports: number[] }> {
  const body = JSON.stringify({ ok: true });
  const ports: number[] = [];
  for (let i = 0; i < TARGETS; i++) {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    ports.push((server.address() as AddressInfo).port);
  }
  return { ports };
}

/** The real app with SUBJECTS nodes on the targets; measures itself between 'reset' and 'stats'. */
async function runStreamGate(ports: number[], monitor: 'on' | 'off'): Promise<{ url: string }> {
  // Measurements, reset at the start of the measured window.
  let drifts: number[] = [];
  let failedChecks = 0;
  let writes = 0;
  let writeMs: number[] = [];
  let writtenRows = 0;
  let failedWrites = 0;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let windowStart = performance.now();
  let cpuStart = process.cpuUsage();
  diagnostics.subscribe('streamgate:health:check', (message) => {
    const m = message as { driftMs: number; status: string };
    drifts.push(m.driftMs);
    if (m.status !== 'HEALTHY') failedChecks++;
  });
  diagnostics.subscribe('streamgate:health:write', (message) => {
    const m = message as { rows: number; ok: boolean; ms?: number };
    if (m.ok) {
      writes++;
      writeMs.push(m.ms ?? Number.NaN);
      writtenRows += m.rows;
    } else failedWrites++;
  });
  process.on('message', (message) => {
    if (message === 'reset') {
      drifts = [];
      failedChecks = 0;
      writes = 0;
      writeMs = [];
      writtenRows = 0;
      failedWrites = 0;
      loop.reset();
      loop.enable();
      windowStart = performance.now();
      cpuStart = process.cpuUsage();
      process.send?.({ reset: true });
    }
    if (message === 'stats') {
      loop.disable();
      drifts.sort((a, b) => a - b);
      const ms = (ns: number) => ns / 1e6;
      const stats: AppStats = {
        checks: drifts.length,
        failedChecks,
        drift: { p50: pct(drifts, 50), p99: pct(drifts, 99), max: drifts.at(-1) ?? Number.NaN },
        loop: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
        writes,
        writeMs: {
          p50: pct(
            writeMs.sort((a, b) => a - b),
            50,
          ),
          max: writeMs.at(-1) ?? Number.NaN,
        },
        writtenRows,
        failedWrites,
        rssMb: process.memoryUsage().rss / 1024 / 1024,
        cpuMs: ((cpu) => (cpu.user + cpu.system) / 1000)(process.cpuUsage(cpuStart)),
        seconds: (performance.now() - windowStart) / 1000,
      };
      process.send?.({ stats });
    }
  });

  const { url } = await startBenchStreamGate({
    host: HOST,
    env: { HEALTH_MONITOR: monitor },
    seed: (database) => seedNodes(database, ports),
  });
  return { url };
}

/** SUBJECTS nodes spread over the targets, stored HEALTHY as after a restart (steady state). */
async function seedNodes(database: Database, ports: number[]): Promise<void> {
  const since = new Date(Date.now() - 3_600_000);
  await database.prisma.node.createMany({
    data: Array.from({ length: SUBJECTS }, (_, i) => ({
      id: randomUUID(),
      kind: KINDS[i % KINDS.length]!,
      httpPort: i % KINDS.length === 0 ? 8080 : null,
      name: `bench-${String(i).padStart(5, '0')}`,
      host: HOST,
      apiPort: ports[i % ports.length]!,
      status: 'HEALTHY' as const,
      healthySince: since,
      lastPingedAt: since,
    })),
  });
  await database.prisma.settings.update({
    where: { id: 1 },
    data: { healthCheckIntervalSeconds: INTERVAL_SECONDS },
  });
}

/**
 * Closed loop (`connections` workers, each sending the next query when the answer is read), or
 * with `rate` an open loop: query i leaves at start + i/rate whatever happened before.
 */
async function runLoad(job: LoadJob): Promise<LoadResult> {
  const pool = new Pool(job.url, { connections: job.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const recordFrom = start + job.warmupMs;
  const stopAt = recordFrom + job.durationMs;
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  async function one(sent: number) {
    let ok = false;
    try {
      const { statusCode, body } = await pool.request({ path: '/graphql', method: 'POST', headers, body: QUERY });
      const text = await body.text();
      ok = statusCode === 200 && !text.includes('"errors"');
    } catch {}
    if (sent < recordFrom) return;
    if (ok) latencies.push(performance.now() - sent);
    else errors++;
  }
  if (job.rate) {
    const rate = job.rate;
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; ; i++) {
      const due = start + (i * 1000) / rate;
      if (due >= stopAt) break;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const p = one(due).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  } else {
    const worker = async () => {
      for (let now = performance.now(); now < stopAt; now = performance.now()) await one(now);
    };
    await Promise.all(Array.from({ length: job.connections }, worker));
  }
  const seconds = (Math.min(performance.now(), stopAt) - recordFrom) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    rps: latencies.length / seconds,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
  };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function child(role: Role) {
  process.on('disconnect', () => process.exit(0));
  if (role === 'load') {
    process.on('message', async (job: LoadJob) => process.send?.(await runLoad(job)));
    process.send?.({ ready: true });
    return;
  }
  if (role === 'targets') {
    process.send?.(await runTargets());
    return;
  }
  const ports = (process.argv[3] ?? '').split(',').map(Number);
  process.send?.(await runStreamGate(ports, process.argv[4] === 'on' ? 'on' : 'off'));
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

const children = new Set<ChildProcess>();

function spawn<T>(role: Role, ...args: string[]): Promise<{ proc: ChildProcess; ready: T }> {
  const proc = fork(fileURLToPath(import.meta.url), [role, ...args], {
    execArgv: process.execArgv, // tsx's loader
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return new Promise((resolve, reject) => {
    proc.once('message', (ready: T) => resolve({ proc, ready }));
    proc.once('exit', (code) => reject(new Error(`${role} exited (${code}) before it was ready`)));
  });
}

function ask<T>(proc: ChildProcess, message: unknown, key: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (reply: Record<string, unknown>) => {
      if (!(key in reply)) return;
      proc.off('message', onMessage);
      resolve(reply[key] as T);
    };
    proc.on('message', onMessage);
    proc.send(message as never);
  });
}

function runJob(load: ChildProcess, job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve) => {
    load.once('message', (result: LoadResult) => resolve(result));
    load.send(job);
  });
}

interface Phase {
  monitor: 'on' | 'off';
  saturated: LoadResult;
  paced: LoadResult;
  /** The app over the saturated and the paced segment. */
  appSaturated: AppStats;
  appPaced: AppStats;
}

async function phase(monitor: 'on' | 'off', ports: number[], load: ChildProcess): Promise<Phase> {
  const started = performance.now();
  const { proc, ready } = await spawn<{ url: string }>('streamgate', ports.join(','), monitor);
  const seeded = (performance.now() - started) / 1000;
  const check = await request(`${ready.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: QUERY,
  });
  const text = await check.body.text();
  if (check.statusCode !== 200 || text.includes('"errors"')) throw new Error(`query failed: ${text.slice(0, 300)}`);
  // The app measures the same window as the load generator: after its warm-up, until it ends.
  const saturatedRun = runJob(load, {
    url: ready.url,
    connections: CONNECTIONS,
    warmupMs: WARMUP_SECONDS * 1000,
    durationMs: SECONDS * 1000,
  });
  await new Promise((r) => setTimeout(r, WARMUP_SECONDS * 1000));
  await ask(proc, 'reset', 'reset');
  const saturated = await saturatedRun;
  const appSaturated = await ask<AppStats>(proc, 'stats', 'stats');
  await ask(proc, 'reset', 'reset');
  const paced = await runJob(load, {
    url: ready.url,
    connections: CONNECTIONS,
    warmupMs: 0,
    durationMs: PACED_SECONDS * 1000,
    rate: RATE,
  });
  const appPaced = await ask<AppStats>(proc, 'stats', 'stats');
  await stopChild(proc);
  for (const [name, l, a] of [
    ['saturated', saturated, appSaturated],
    ['paced', paced, appPaced],
  ] as const) {
    console.log(
      `  monitor ${monitor.padEnd(3)} ${name.padEnd(9)} ${f(l.rps, 0).padStart(5)} q/s  p50 ${f(l.p50)} ms  ` +
        `p99 ${f(l.p99)} ms  errors ${l.errors}  loop p99 ${f(a.loop.p99)} ms  ` +
        `checks ${a.checks} (${a.failedChecks} failed)  drift p99 ${f(a.drift.p99)} ms  ` +
        `writes ${a.writes}  RSS ${f(a.rssMb, 0)} MB`,
    );
  }
  console.log(`  (app start + ${SUBJECTS} nodes seeded in ${f(seeded)} s)`);
  return { monitor, saturated, paced, appSaturated, appPaced };
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
/** NaN crosses IPC as null. */
const f = (n: number | null, digits = 1) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
    for (const proc of children) proc.kill('SIGKILL');
    process.exit(1);
  }, WATCHDOG_MS);

  const [targets, load] = await Promise.all([spawn<{ ports: number[] }>('targets'), spawn('load')]);
  console.log(
    `health bench: ${SUBJECTS} nodes on ${TARGETS} local targets, interval ${INTERVAL_SECONDS} s, ` +
      `${WARMUP_SECONDS} s warm-up, ${SECONDS} s saturated (${CONNECTIONS} connections) + ${PACED_SECONDS} s at ` +
      `${RATE} q/s per phase, ${ROUNDS} round(s); ` +
      `node ${process.version}\n`,
  );
  const phases: Phase[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const monitor of ['off', 'on'] as const) phases.push(await phase(monitor, targets.ready.ports, load.proc));
  }
  const off = phases.filter((p) => p.monitor === 'off');
  const on = phases.filter((p) => p.monitor === 'on');
  const avg = (ps: Phase[], pick: (p: Phase) => number) => mean(ps.map(pick));
  const offRps = avg(off, (p) => p.saturated.rps);
  const onRps = avg(on, (p) => p.saturated.rps);
  const onApp = on.flatMap((p) => [p.appSaturated, p.appPaced]);

  console.log(
    '\n| monitor | saturated q/s | p50 (ms) | p99 (ms) | loop p99 (ms) | paced q/s | p50 (ms) | p99 (ms) | loop p50 / p99 / max (ms) | RSS (MB) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [name, ps] of [
    ['off', off],
    ['on', on],
  ] as const) {
    console.log(
      `| ${name} | ${f(
        avg(ps, (p) => p.saturated.rps),
        0,
      )} | ${f(avg(ps, (p) => p.saturated.p50))} | ` +
        `${f(avg(ps, (p) => p.saturated.p99))} | ${f(avg(ps, (p) => p.appSaturated.loop.p99))} | ` +
        `${f(
          avg(ps, (p) => p.paced.rps),
          0,
        )} | ${f(avg(ps, (p) => p.paced.p50))} | ${f(avg(ps, (p) => p.paced.p99))} | ` +
        `${f(avg(ps, (p) => p.appPaced.loop.p50))} / ${f(avg(ps, (p) => p.appPaced.loop.p99))} / ` +
        `${f(Math.max(...ps.map((p) => p.appPaced.loop.max)))} | ${f(Math.max(...ps.map((p) => p.appPaced.rssMb)), 0)} |`,
    );
  }
  const perRound = (a: AppStats) => (a.writes * INTERVAL_SECONDS) / a.seconds;
  const checks = onApp.reduce((n, a) => n + a.checks, 0);
  const seconds = onApp.reduce((n, a) => n + a.seconds, 0);
  const ratios = on.map((p, i) => p.saturated.rps / off[i]!.saturated.rps);
  const perRoundRatio = ratios.map((r) => f(r, 3)).join(', ');
  const medianRatio = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!;
  // CPU is steadier than req/s on a shared machine: the app's CPU per query (saturated), and the
  // monitor's own CPU (paced segment, on minus off: the queries are the same in both).
  const cpuPerQuery = (ps: Phase[]) =>
    avg(ps, (p) => (p.appSaturated.cpuMs * 1000) / (p.saturated.rps * p.appSaturated.seconds));
  const cpuPerSecond = (ps: Phase[]) => avg(ps, (p) => p.appPaced.cpuMs / p.appPaced.seconds);
  const monitorCpu = cpuPerSecond(on) - cpuPerSecond(off);
  console.log(
    `\nsaturated queries/s, on ÷ off: ×${f(onRps / offRps, 3)} (per round ${perRoundRatio}, median ×${f(medianRatio, 3)}; ` +
      `drop ${f((1 - onRps / offRps) * 100)}%, median round ${f((1 - medianRatio) * 100)}%; target ≤ 10%)` +
      `\napp CPU per query (saturated): off ${f(cpuPerQuery(off), 0)} µs, on ${f(cpuPerQuery(on), 0)} µs; ` +
      `the monitor's own CPU (paced, on − off): ${f(monitorCpu, 0)} ms/s = ${f(monitorCpu / 10)}% of one core, ` +
      `${f((monitorCpu * 1000) / (SUBJECTS / INTERVAL_SECONDS), 0)} µs per check` +
      `\nscheduling drift p99: saturated ${f(avg(on, (p) => p.appSaturated.drift.p99))} ms, paced ` +
      `${f(avg(on, (p) => p.appPaced.drift.p99))} ms; max ${f(Math.max(...onApp.map((a) => a.drift.max)))} ms ` +
      `(target p99 < 1000 ms)` +
      `\nevent-loop delay p99, paced at ${RATE} q/s: off ${f(avg(off, (p) => p.appPaced.loop.p99))} ms, on ` +
      `${f(avg(on, (p) => p.appPaced.loop.p99))} ms (target < 20 ms)` +
      `\nchecks: ${checks} in ${f(seconds)} s = ${f(checks / seconds)}/s (expected ${f(SUBJECTS / INTERVAL_SECONDS)}/s), ` +
      `${onApp.reduce((n, a) => n + a.failedChecks, 0)} failed` +
      `\nDB writes per ${INTERVAL_SECONDS} s round: ${f(mean(onApp.map(perRound)))} statements of ` +
      `${f(mean(onApp.map((a) => a.writtenRows / Math.max(1, a.writes))))} rows, ` +
      `${f(mean(onApp.map((a) => a.writeMs.p50)))} ms each (max ${f(Math.max(...onApp.map((a) => a.writeMs.max)))} ms), ` +
      `${onApp.reduce((n, a) => n + a.failedWrites, 0)} failed`,
  );
  clearTimeout(watchdog);
  await Promise.all([...children].map(stopChild));
}

const role = process.argv[2] as Role | undefined;
if (role) {
  await child(role);
} else {
  try {
    await main();
  } catch (error) {
    await Promise.all([...children].map(stopChild));
    throw error;
  }
}
