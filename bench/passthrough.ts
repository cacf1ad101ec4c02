/**
 * Passthrough benchmark: `/proxy/caches/{id}/…` against the same upstream hit directly and through
 * `@fastify/http-proxy`, in one run, so that the numbers are ratios on the same noisy machine.
 *
 * What runs, each in its own process (this file, forked with a role argument):
 *   - upstream    a node:http "node": `GET /bench` answers a small JSON document, `POST /echo`
 *                 hashes the body it receives (sha256) and answers with the byte count and hash;
 *   - streamgate  the real app (`createApp`) over an in-memory PGlite migrated with
 *                 `applyMigrations`, NODE_ENV=production, LOG_LEVEL=silent, a known ADMIN_TOKEN,
 *                 one CACHE node registered for the upstream;
 *   - fastify     fastify + @fastify/http-proxy, prefix `/proxy/caches/{id}` → the upstream, so
 *                 both proxies serve byte-identical request paths;
 *   - load        a closed-loop load generator: N keep-alive connections (undici Pool), each
 *                 sending its next request as soon as the previous answer was read.
 * The load generator is a separate process from every server, so it does not share an event loop
 * with what it measures (on a 2-core machine they still share the cores: compare ratios).
 *
 * Measured:
 *   1. Throughput and latency: every target (direct, fastify, streamgate) gets the same load with
 *      the same `Authorization: Bearer …` header for the same time after a warm-up, in ROUNDS
 *      rounds with the order rotated. Reported: req/s, p50, p99 (means over rounds), the ratio to
 *      direct, and streamgate ÷ fastify; also the server's CPU time per request (the proxy's own
 *      process; for direct, the node's), which is steadier than req/s on a shared machine.
 *   2. A 100 MiB upload streamed through each proxy to `POST /echo` (hash checked end to end),
 *      while this process samples the proxy process's RSS from /proc every 5 ms; the kernel's
 *      peak (VmHWM, reset via clear_refs when allowed) is read too. Reported: MB/s, RSS before,
 *      peak RSS during, and the difference: flat memory means the difference is far below 100 MiB.
 *
 * Run: `npx tsx bench/passthrough.ts` (~1–2 minutes; Linux for the RSS part; only 127.0.0.1).
 * Knobs: BENCH_SECONDS (per measurement, default 8), BENCH_WARMUP_SECONDS (2),
 * BENCH_CONNECTIONS (32), BENCH_ROUNDS (2), BENCH_UPLOAD_MB (100); BENCH_CPU_PROF_DIR=<dir> writes a
 * V8 CPU profile of every server process there (open in Chrome DevTools or speedscope).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { hashBody } from '../test/helpers/hash-body.js';
import { stopChild } from './lib/children.js';
import { BENCH_TOKEN, startBenchStreamGate } from './lib/streamgate.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const UPLOAD_MB = Number(process.env.BENCH_UPLOAD_MB ?? 100);
/** Set to a directory to write a V8 CPU profile of each server process (`--cpu-prof`). */
const PROFILE_DIR = process.env.BENCH_CPU_PROF_DIR;
/** The whole run is cut (children killed, exit 1) if it takes longer than this. */
const WATCHDOG_MS = 5 * 60_000;

const TOKEN = BENCH_TOKEN;
const AUTH = { authorization: `Bearer ${TOKEN}` };
const HOST = '127.0.0.1';

type Role = 'upstream' | 'streamgate' | 'fastify' | 'load';

interface Ready {
  url: string;
}

interface LoadJob {
  origin: string;
  path: string;
  headers: Record<string, string>;
  connections: number;
  warmupMs: number;
  durationMs: number;
}

interface LoadResult {
  requests: number;
  errors: number;
  non2xx: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

/** The upstream node: a small JSON answer, and a hashing sink for uploads. */
async function runUpstream(): Promise<Ready> {
  const answer = JSON.stringify({ ok: true, node: 'bench-upstream', items: [1, 2, 3], note: 'a small JSON answer' });
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/echo')) {
      void hashBody(req).then((digest) => {
        const body = JSON.stringify(digest);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return { url: `http://${HOST}:${(server.address() as AddressInfo).port}` };
}

/** The real StreamGate app over an in-memory, migrated PGlite with one node for the upstream. */
async function runStreamGate(upstream: string, nodeId: string): Promise<Ready> {
  const { port } = new URL(upstream);
  const { url } = await startBenchStreamGate({
    host: HOST,
    env: { HEALTH_MONITOR: 'off' },
    seed: async (database) => {
      await database.prisma.node.create({
        data: { id: nodeId, kind: 'CACHE', name: 'bench', host: HOST, apiPort: Number(port) },
      });
    },
  });
  return { url };
}

/** fastify + @fastify/http-proxy (defaults: undici, 128 connections) on the same paths. */
async function runFastify(upstream: string, nodeId: string): Promise<Ready> {
  const { default: Fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: false });
  await app.register(proxy, { upstream, prefix: `/proxy/caches/${nodeId}`, rewritePrefix: '' });
  return { url: await app.listen({ port: 0, host: HOST }) };
}

/** Closed loop: `connections` workers, each sending the next request when the answer is read. */
async function runLoad(job: LoadJob): Promise<LoadResult> {
  const pool = new Pool(job.origin, { connections: job.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const latencies: number[] = [];
  let errors = 0;
  let non2xx = 0;
  let recording = false;
  const start = performance.now();
  const recordFrom = start + job.warmupMs;
  const stopAt = recordFrom + job.durationMs;

  async function worker() {
    for (let now = performance.now(); now < stopAt; now = performance.now()) {
      if (!recording && now >= recordFrom) recording = true;
      const sent = now;
      try {
        const { statusCode, body } = await pool.request({ path: job.path, method: 'GET', headers: job.headers });
        await body.arrayBuffer();
        if (statusCode < 200 || statusCode >= 300) non2xx += recording ? 1 : 0;
      } catch {
        errors += recording ? 1 : 0;
      }
      if (sent >= recordFrom) latencies.push(performance.now() - sent);
    }
  }
  await Promise.all(Array.from({ length: job.connections }, worker));
  const seconds = (performance.now() - recordFrom) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  return {
    requests: latencies.length,
    errors,
    non2xx,
    seconds,
    rps: latencies.length / seconds,
    p50: pct(50),
    p99: pct(99),
  };
}

async function child(role: Role) {
  // Never outlive the orchestrator.
  process.on('disconnect', () => process.exit(0));
  const [upstream = '', nodeId = ''] = process.argv.slice(3);
  if (role === 'load') {
    process.on('message', async (job: LoadJob) => process.send?.(await runLoad(job)));
    process.send?.({ url: '' } satisfies Ready);
    return;
  }
  // CPU time used so far, for the orchestrator's CPU-per-request figures.
  process.on('message', (message) => {
    if (message === 'cpu') process.send?.({ cpu: process.cpuUsage() });
  });
  const ready =
    role === 'upstream'
      ? await runUpstream()
      : role === 'streamgate'
        ? await runStreamGate(upstream, nodeId)
        : await runFastify(upstream, nodeId);
  process.send?.(ready);
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

const children: ChildProcess[] = [];

function spawn(role: Role, ...args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const profile = PROFILE_DIR && role !== 'load' ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  const proc = fork(fileURLToPath(import.meta.url), [role, ...args], {
    execArgv: [...process.execArgv, ...profile], // tsx's loader
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(proc);
  return new Promise((resolve, reject) => {
    proc.once('message', (ready: Ready) => resolve({ proc, url: ready.url }));
    proc.once('exit', (code) => reject(new Error(`${role} exited (${code}) before it was ready`)));
  });
}

function runJob(load: ChildProcess, job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve) => {
    load.once('message', (result: LoadResult) => resolve(result));
    load.send(job);
  });
}

/** CPU time (user + system, µs) a server child has used so far. */
function cpuOf(proc: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (message: { cpu?: NodeJS.CpuUsage }) => {
      if (!message.cpu) return;
      proc.off('message', onMessage);
      resolve(message.cpu.user + message.cpu.system);
    };
    proc.on('message', onMessage);
    proc.send('cpu');
  });
}

/** Resident set size of a process in bytes, from /proc (Linux); `VmHWM` is the kernel's peak. */
function procMemory(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Resets a process's VmHWM to its current RSS (Linux ≥ 4.0, own processes); false if refused. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

interface UploadResult {
  mbPerSecond: number;
  rssBefore: number;
  rssPeak: number;
  hashOk: boolean;
}

/** Streams UPLOAD_MB through `url` to the upstream's /echo while sampling the proxy's RSS. */
async function upload(url: string, path: string, pid: number): Promise<UploadResult> {
  const chunk = randomBytes(64 * 1024);
  const chunks = Math.round((UPLOAD_MB * 1024 * 1024) / chunk.length);
  const expected = createHash('sha256');
  function* body() {
    for (let i = 0; i < chunks; i++) {
      expected.update(chunk);
      yield chunk;
    }
  }
  const before = procMemory(pid);
  const peakResettable = resetPeak(pid);
  let sampledPeak = before?.rss ?? NaN;
  const sampler = setInterval(() => {
    const now = procMemory(pid);
    if (now) sampledPeak = Math.max(sampledPeak, now.rss);
  }, 5);
  const started = performance.now();
  const res = await request(`${url}${path}`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'application/octet-stream', 'content-length': String(chunks * chunk.length) },
    body: Readable.from(body()),
  });
  const echo = (await res.body.json()) as { bytes: number; sha256: string };
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const after = procMemory(pid);
  const kernelPeak = peakResettable && after ? after.hwm : NaN;
  return {
    mbPerSecond: (chunks * chunk.length) / 1024 / 1024 / seconds,
    rssBefore: before?.rss ?? NaN,
    rssPeak: Number.isNaN(kernelPeak) ? sampledPeak : Math.max(sampledPeak, kernelPeak),
    hashOk: res.statusCode === 200 && echo.bytes === chunks * chunk.length && echo.sha256 === expected.digest('hex'),
  };
}

const mb = (bytes: number) => (Number.isNaN(bytes) ? 'n/a' : `${(bytes / 1024 / 1024).toFixed(1)} MB`);
const ms = (value: number) => value.toFixed(2);
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
    for (const proc of children) proc.kill();
    process.exit(1);
  }, WATCHDOG_MS);

  const nodeId = randomUUID();
  const upstream = await spawn('upstream');
  const [streamgate, fastify, load] = await Promise.all([
    spawn('streamgate', upstream.url, nodeId),
    spawn('fastify', upstream.url, nodeId),
    spawn('load'),
  ]);
  // `proc` is the process whose CPU time is charged to the target: the proxy, or for direct the node.
  const targets = [
    { name: 'direct', url: upstream.url, path: '/bench', proc: upstream.proc },
    { name: 'fastify', url: fastify.url, path: `/proxy/caches/${nodeId}/bench`, proc: fastify.proc },
    { name: 'streamgate', url: streamgate.url, path: `/proxy/caches/${nodeId}/bench`, proc: streamgate.proc },
  ] as const;

  // Sanity: every target answers 200 with the upstream's document.
  for (const t of targets) {
    const res = await request(`${t.url}${t.path}`, { headers: AUTH });
    const text = await res.body.text();
    if (res.statusCode !== 200 || !text.includes('bench-upstream')) {
      throw new Error(`${t.name} answered ${res.statusCode}: ${text.slice(0, 200)}`);
    }
  }

  console.log(
    `passthrough bench: ${CONNECTIONS} connections, ${WARMUP_SECONDS} s warm-up + ${SECONDS} s per target, ` +
      `${ROUNDS} round(s), load generator in its own process; node ${process.version}\n`,
  );

  // 1. Upload first, while the proxies' heaps are still small: RSS before/peak are then meaningful.
  const uploads: Record<string, UploadResult> = {};
  for (const [name, target] of [
    ['fastify', fastify],
    ['streamgate', streamgate],
  ] as const) {
    uploads[name] = await upload(target.url, `/proxy/caches/${nodeId}/echo`, target.proc.pid!);
  }

  // 2. Throughput, order rotated per round.
  const results: Record<string, (LoadResult & { cpuPerRequest: number })[]> = {
    direct: [],
    fastify: [],
    streamgate: [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    for (const t of order) {
      const cpuBefore = await cpuOf(t.proc);
      const load_ = await runJob(load.proc, {
        origin: t.url,
        path: t.path,
        headers: AUTH,
        connections: CONNECTIONS,
        warmupMs: WARMUP_SECONDS * 1000,
        durationMs: SECONDS * 1000,
      });
      // Includes the warm-up's requests, which the load result does not count: scale by time.
      const cpu = (await cpuOf(t.proc)) - cpuBefore;
      const allRequests = load_.requests * ((WARMUP_SECONDS + load_.seconds) / load_.seconds);
      const result = { ...load_, cpuPerRequest: cpu / allRequests };
      results[t.name]!.push(result);
      console.log(
        `  round ${round + 1} ${t.name.padEnd(10)} ${result.rps.toFixed(0).padStart(6)} req/s  ` +
          `p50 ${ms(result.p50)} ms  p99 ${ms(result.p99)} ms  CPU ${result.cpuPerRequest.toFixed(0)} µs/req  ` +
          `errors ${result.errors}  non-2xx ${result.non2xx}`,
      );
    }
  }

  const summary = Object.fromEntries(
    Object.entries(results).map(([name, runs]) => [
      name,
      {
        rps: mean(runs.map((r) => r.rps)),
        p50: mean(runs.map((r) => r.p50)),
        p99: mean(runs.map((r) => r.p99)),
        cpu: mean(runs.map((r) => r.cpuPerRequest)),
        errors: runs.reduce((a, r) => a + r.errors + r.non2xx, 0),
      },
    ]),
  );
  const direct = summary.direct!;
  console.log('\n| target | req/s | p50 (ms) | p99 (ms) | server CPU (µs/req) | errors | req/s vs direct |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const name of ['direct', 'fastify', 'streamgate']) {
    const s = summary[name]!;
    console.log(
      `| ${name} | ${s.rps.toFixed(0)} | ${ms(s.p50)} | ${ms(s.p99)} | ${s.cpu.toFixed(0)} | ${s.errors} | ` +
        `${(s.rps / direct.rps).toFixed(2)} |`,
    );
  }
  const sg = summary.streamgate!;
  const fy = summary.fastify!;
  const perRound = results.streamgate!.map((r, i) => (r.rps / results.fastify![i]!.rps).toFixed(2)).join(', ');
  console.log(
    `\nstreamgate ÷ fastify: req/s ×${(sg.rps / fy.rps).toFixed(2)} (per round: ${perRound}), ` +
      `p50 ×${(sg.p50 / fy.p50).toFixed(2)}, p99 ×${(sg.p99 / fy.p99).toFixed(2)}, ` +
      `CPU per request ×${(sg.cpu / fy.cpu).toFixed(2)} (lower is better for latency and CPU)`,
  );

  console.log(`\n| ${UPLOAD_MB} MiB upload via proxy | MB/s | RSS before | peak RSS | peak − before | sha256 ok |`);
  console.log('|---|---:|---:|---:|---:|---|');
  for (const [name, u] of Object.entries(uploads)) {
    console.log(
      `| ${name} | ${u.mbPerSecond.toFixed(0)} | ${mb(u.rssBefore)} | ${mb(u.rssPeak)} | ${mb(u.rssPeak - u.rssBefore)} | ${u.hashOk ? 'yes' : 'NO'} |`,
    );
  }

  clearTimeout(watchdog);
  await stopChildren();
}

/** Children exit on disconnect (which writes their CPU profiles); a stuck one is killed. */
async function stopChildren() {
  await Promise.all(children.map(stopChild));
}

const role = process.argv[2] as Role | undefined;
if (role) {
  await child(role);
} else {
  try {
    await main();
  } catch (error) {
    await stopChildren();
    throw error;
  }
}
