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
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  assertAnswers,
  compareThroughput,
  KNOBS,
  printRatio,
  printUploads,
  type Ready,
  Roles,
  uploadThrough,
} from './lib/http-load.js';
import { BENCH_TOKEN, startBenchStreamGate } from './lib/streamgate.js';
import { runUpstream } from './lib/upstream.js';

/** The whole run is cut (children killed, exit 1) if it takes longer than this. */
const WATCHDOG_MS = 5 * 60_000;

const AUTH = { authorization: `Bearer ${BENCH_TOKEN}` };
const HOST = '127.0.0.1';

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

const roles = new Roles(fileURLToPath(import.meta.url), process.env.BENCH_CPU_PROF_DIR);

async function main() {
  const watchdog = roles.watchdog(WATCHDOG_MS);
  const nodeId = randomUUID();
  const upstream = await roles.spawn('upstream');
  const [streamgate, fastify, load] = await Promise.all([
    roles.spawn('streamgate', [upstream.url, nodeId]),
    roles.spawn('fastify', [upstream.url, nodeId]),
    roles.spawn('load'),
  ]);
  const path = `/proxy/caches/${nodeId}/bench`;
  const targets = [
    { name: 'direct', url: upstream.url, path: '/bench', proc: upstream.proc, headers: AUTH },
    { name: 'fastify', url: fastify.url, path, proc: fastify.proc, headers: AUTH },
    { name: 'streamgate', url: streamgate.url, path, proc: streamgate.proc, headers: AUTH },
  ];

  await assertAnswers(targets);

  console.log(
    `passthrough bench: ${KNOBS.connections} connections, ${KNOBS.warmupSeconds} s warm-up + ${KNOBS.seconds} s per target, ` +
      `${KNOBS.rounds} round(s), load generator in its own process; node ${process.version}\n`,
  );

  // 1. Upload first, while the proxies' heaps are still small: RSS before/peak are then meaningful.
  const uploads = await uploadThrough({ fastify, streamgate }, `/proxy/caches/${nodeId}/echo`, AUTH);

  // 2. Throughput, order rotated per round.
  const summary = await compareThroughput(load.proc, targets);
  printRatio('streamgate ÷ fastify', summary.streamgate!, summary.fastify!);
  printUploads(KNOBS.uploadMb, uploads);

  clearTimeout(watchdog);
  await roles.stopAll();
}

await roles.entry(main, (role, [upstream = '', nodeId = '']) =>
  role === 'upstream'
    ? runUpstream(HOST)
    : role === 'streamgate'
      ? runStreamGate(upstream, nodeId)
      : runFastify(upstream, nodeId),
);
