/**
 * Data plane benchmark: HTTP through `PROXY_PORT` (routed by `Host`) against the same upstream hit
 * directly and through `@fastify/http-proxy`, in one run, so the numbers are ratios on the same
 * noisy machine (the method of bench/passthrough.ts, whose harness is bench/lib/http-load.ts).
 *
 * What runs, each in its own process (this file, forked with a role argument):
 *   - upstream    node:http (bench/lib/upstream.ts): `GET` answers a small JSON document,
 *                 `POST /echo` hashes what it receives, WebSocket upgrades get an echo;
 *   - streamgate  the real app (`createApp`, in-memory PGlite, NODE_ENV=production, logs silent)
 *                 with the data plane on and a routes file with one route, `bench` → the upstream;
 *   - logged      the same with LOG_LEVEL=info: one access-log line per request (to /dev/null),
 *                 to show what the access log costs;
 *   - fastify     fastify + @fastify/http-proxy → the upstream (its defaults: undici, no logger);
 *   - load        the closed-loop HTTP load generator (undici Pool, keep-alive);
 *   - wsload      N WebSockets, each sending its next message when the echo of the last is back.
 *
 * Measured:
 *   1. req/s, p50, p99 and the server's CPU per request for direct, fastify, streamgate and
 *      logged, ROUNDS rounds with the order rotated. Target: streamgate ÷ fastify ≥ 1.
 *   2. A 100 MiB upload through fastify and the data plane (sha256 checked end to end) with the
 *      proxy process's RSS sampled. Target: peak − before ≤ 32 MB.
 *   3. WebSocket echo: messages/s and p99 round trip, direct vs through the data plane.
 *
 * Run: `npx tsx bench/data-plane.ts` (~2 minutes; Linux for the RSS part; only 127.0.0.1).
 * Knobs: BENCH_SECONDS (per measurement, default 8), BENCH_WARMUP_SECONDS (2),
 * BENCH_CONNECTIONS (32), BENCH_ROUNDS (2), BENCH_UPLOAD_MB (100), BENCH_WS_CONNECTIONS (16);
 * BENCH_CPU_PROF_DIR=<dir> writes a V8 CPU profile of every server process there.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import {
  assertAnswers,
  compareThroughput,
  KNOBS,
  mean,
  ms,
  percentile,
  printRatio,
  printUploads,
  type Ready,
  Roles,
  uploadThrough,
} from './lib/http-load.js';
import { startBenchStreamGate } from './lib/streamgate.js';
import { runUpstream } from './lib/upstream.js';

const WS_CONNECTIONS = Number(process.env.BENCH_WS_CONNECTIONS ?? 16);
const WATCHDOG_MS = 6 * 60_000;

const HOST = '127.0.0.1';
/** The Host every request carries: the route's alias as the first label. */
const ROUTED = { host: 'bench.example.test' };

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

/** The real app with the data plane on and one file route to the upstream. */
async function runStreamGate(upstream: string, logLevel: string): Promise<Ready> {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-bench-dp-'));
  const routesFile = join(dir, 'routes.yaml');
  writeFileSync(routesFile, `routes:\n  - alias: bench\n    upstream: ${upstream}\n`);
  const { proxyUrl } = await startBenchStreamGate({
    host: HOST,
    env: { HEALTH_MONITOR: 'off', ROUTES_FILE: routesFile, LOG_LEVEL: logLevel },
    dataPlane: true,
  });
  return { url: proxyUrl as string };
}

/** fastify + @fastify/http-proxy to the upstream, every path. */
async function runFastify(upstream: string): Promise<Ready> {
  const { default: Fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: false });
  await app.register(proxy, { upstream });
  return { url: await app.listen({ port: 0, host: HOST }) };
}

interface WsJob {
  url: string;
  headers: Record<string, string>;
  connections: number;
  warmupMs: number;
  durationMs: number;
}

interface WsResult {
  messages: number;
  perSecond: number;
  p50: number;
  p99: number;
}

/** Closed loop over WebSockets: each connection sends a 1 KiB message when the last echo is back. */
async function runWsLoad(job: WsJob): Promise<WsResult> {
  const sockets = await Promise.all(
    Array.from(
      { length: job.connections },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(job.url, { headers: job.headers, perMessageDeflate: false });
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        }),
    ),
  );
  const payload = Buffer.alloc(1024, 1);
  const latencies: number[] = [];
  const recordFrom = performance.now() + job.warmupMs;
  const stopAt = recordFrom + job.durationMs;
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          let sent = 0;
          const next = () => {
            const now = performance.now();
            if (now >= stopAt) return resolve();
            sent = now;
            ws.send(payload);
          };
          ws.on('message', () => {
            if (sent >= recordFrom) latencies.push(performance.now() - sent);
            next();
          });
          next();
        }),
    ),
  );
  for (const ws of sockets) ws.terminate();
  latencies.sort((a, b) => a - b);
  return {
    messages: latencies.length,
    perSecond: latencies.length / (job.durationMs / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

async function runWsLoadRole(): Promise<Ready> {
  process.on('message', async (job: WsJob | string) => {
    if (typeof job === 'object') process.send?.(await runWsLoad(job));
  });
  return { url: '' };
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

const roles = new Roles(fileURLToPath(import.meta.url), process.env.BENCH_CPU_PROF_DIR);

function wsJob(proc: import('node:child_process').ChildProcess, job: WsJob): Promise<WsResult> {
  return new Promise((resolve) => {
    const onMessage = (message: WsResult | { cpu: unknown }) => {
      if (!('perSecond' in message)) return;
      proc.off('message', onMessage);
      resolve(message);
    };
    proc.on('message', onMessage);
    proc.send(job);
  });
}

async function main() {
  const watchdog = roles.watchdog(WATCHDOG_MS);
  const upstream = await roles.spawn('upstream');
  const [streamgate, logged, fastify, load, wsload] = await Promise.all([
    roles.spawn('streamgate', [upstream.url, 'silent']),
    // The access log is written (one line per request), but not shown.
    roles.spawn('streamgate', [upstream.url, 'info'], { quiet: true }),
    roles.spawn('fastify', [upstream.url]),
    roles.spawn('load'),
    roles.spawn('wsload'),
  ]);
  const targets = [
    { name: 'direct', url: upstream.url, path: '/bench', proc: upstream.proc, headers: ROUTED },
    { name: 'fastify', url: fastify.url, path: '/bench', proc: fastify.proc, headers: ROUTED },
    { name: 'streamgate', url: streamgate.url, path: '/bench', proc: streamgate.proc, headers: ROUTED },
    { name: 'logged', url: logged.url, path: '/bench', proc: logged.proc, headers: ROUTED },
  ];
  await assertAnswers(targets);

  console.log(
    `data plane bench: ${KNOBS.connections} connections, ${KNOBS.warmupSeconds} s warm-up + ${KNOBS.seconds} s per target, ` +
      `${KNOBS.rounds} round(s), load generators in their own processes; node ${process.version}\n`,
  );

  // 1. Upload first, while the heaps are small: RSS before/peak are then meaningful.
  const uploads = await uploadThrough({ fastify, streamgate }, '/echo', ROUTED);

  // 2. HTTP throughput.
  const summary = await compareThroughput(load.proc, targets);
  printRatio('streamgate ÷ fastify', summary.streamgate!, summary.fastify!);
  printRatio('logged ÷ streamgate (the access log)', summary.logged!, summary.streamgate!);
  printUploads(KNOBS.uploadMb, uploads);

  // 3. WebSocket echo, direct and through the data plane, rounds rotated.
  const ws: Record<string, WsResult[]> = { direct: [], streamgate: [] };
  for (let round = 0; round < KNOBS.rounds; round++) {
    const order = round % 2 === 0 ? (['direct', 'streamgate'] as const) : (['streamgate', 'direct'] as const);
    for (const name of order) {
      const base = name === 'direct' ? upstream.url : streamgate.url;
      const result = await wsJob(wsload.proc, {
        url: base.replace('http', 'ws'),
        headers: ROUTED,
        connections: WS_CONNECTIONS,
        warmupMs: KNOBS.warmupSeconds * 1000,
        durationMs: KNOBS.seconds * 1000,
      });
      ws[name]?.push(result);
      console.log(
        `  ws round ${round + 1} ${name.padEnd(10)} ${result.perSecond.toFixed(0).padStart(6)} msg/s  ` +
          `p50 ${ms(result.p50)} ms  p99 ${ms(result.p99)} ms`,
      );
    }
  }
  const wsMean = (name: string) => ({
    perSecond: mean((ws[name] ?? []).map((r) => r.perSecond)),
    p99: mean((ws[name] ?? []).map((r) => r.p99)),
  });
  const direct = wsMean('direct');
  const routed = wsMean('streamgate');
  console.log(`\n| WebSocket echo (${WS_CONNECTIONS} connections, 1 KiB) | msg/s | p99 (ms) | msg/s vs direct |`);
  console.log('|---|---:|---:|---:|');
  console.log(`| direct | ${direct.perSecond.toFixed(0)} | ${ms(direct.p99)} | 1.00 |`);
  console.log(
    `| data plane | ${routed.perSecond.toFixed(0)} | ${ms(routed.p99)} | ${(routed.perSecond / direct.perSecond).toFixed(2)} |`,
  );

  clearTimeout(watchdog);
  await roles.stopAll();
}

await roles.entry(main, (role, [upstream = '', logLevel = 'silent']) => {
  switch (role) {
    case 'upstream':
      return runUpstream(HOST);
    case 'streamgate':
      return runStreamGate(upstream, logLevel);
    case 'fastify':
      return runFastify(upstream);
    default:
      return runWsLoadRole();
  }
});
