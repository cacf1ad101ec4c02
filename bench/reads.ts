/**
 * GraphQL read path: StreamGate's list and by-id queries against PostGraphile 4 reading the same
 * rows of the same PostgreSQL tables, and StreamGate's per-request overhead (`{ __typename }`)
 * against a stock graphql-yoga `{ hello }`, in one run (ratios on the same noisy machine).
 *
 * What runs, each in its own process (this file, forked with a role argument):
 *   - streamgate   the real app (`createApp`, NODE_ENV=production, logs at warn) on PostgreSQL,
 *                  schema `bench_reads` of the local database (dropped and re-created per run);
 *   - embedded     the same on the embedded database (a fresh DATA_DIR);
 *   - postgraphile PostGraphile 4 on the same schema (its Relay NodePlugin skipped: the table is
 *                  called `Node`), mutations off;
 *   - yoga         stock graphql-yoga serving `{ hello }`;
 *   - load         the closed-loop load generator (bench/lib/http-load.ts), POSTing JSON.
 * Seeded through StreamGate's API: 100 streamers, 40 sessions (and the event log their creation
 * writes), the same rows for every server.
 *
 * Targets (issue 21): list queries ≥ 1.0× PostGraphile req/s with p99 ≤ its p99; `__typename`
 * ≥ 0.9× Yoga; embedded list ≥ 1,500 req/s; at 1,000 req/s of mixed reads for 60 s, the server's
 * RSS stays at its plateau (soak).
 *
 * Run: `npm run bench:reads` (~5 minutes). Knobs: BENCH_SECONDS (8), BENCH_WARMUP_SECONDS (2),
 * BENCH_CONNECTIONS (16 here), BENCH_ROUNDS (2), BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/test),
 * BENCH_ONLY (comma-separated group names: streamers, sessions, events, node, overhead, soak),
 * BENCH_SOAK_RATE (1000 req/s), BENCH_SOAK_SECONDS (60);
 * BENCH_CPU_PROF_DIR=<dir> writes V8 CPU profiles of the servers.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Pool, request } from 'undici';
import { compareThroughput, KNOBS, printRatio, procMemory, type Ready, Roles, type Target } from './lib/http-load.js';
import { BENCH_TOKEN, startBenchStreamGate } from './lib/streamgate.js';

const HOST = '127.0.0.1';
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA = 'bench_reads';
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const ONLY = process.env.BENCH_ONLY?.split(',');
const WATCHDOG_MS = 15 * 60_000;
const SOAK_RATE = Number(process.env.BENCH_SOAK_RATE ?? 1000);
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 60);
const POSTGRAPHILE_DIR = fileURLToPath(new URL('./postgraphile/', import.meta.url));

/** PostGraphile 4's own install (graphql 15 beside our 16), made on the first run. */
function installPostGraphile(): void {
  if (existsSync(join(POSTGRAPHILE_DIR, 'node_modules', 'postgraphile'))) return;
  console.log('installing PostGraphile 4 into bench/postgraphile (first run only)…');
  const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefix', POSTGRAPHILE_DIR], {
    stdio: 'inherit',
  });
  if (npm.status !== 0) throw new Error('npm install in bench/postgraphile failed');
}

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

/** The real app, on PostgreSQL (`databaseUrl`) or on a fresh embedded DATA_DIR. */
async function runStreamGate(databaseUrl: string, cached = true): Promise<Ready> {
  const database: Record<string, string> = databaseUrl
    ? { DATABASE_URL: databaseUrl }
    : { DATA_DIR: mkdtempSync(join(tmpdir(), 'streamgate-bench-reads-')) };
  const { url } = await startBenchStreamGate({
    host: HOST,
    env: { LOG_LEVEL: 'warn', HEALTH_MONITOR: 'off', ...database, ...(cached ? {} : { RESPONSE_CACHE_TTL_MS: '0' }) },
    fromEnv: true,
  });
  return { url };
}

async function runPostGraphile(): Promise<Ready> {
  // PostGraphile has an install of its own (bench/postgraphile): it needs graphql 15.
  const fromBaseline = createRequire(join(POSTGRAPHILE_DIR, 'package.json'));
  const { postgraphile } = fromBaseline('postgraphile') as {
    postgraphile: (db: string, schema: string, options: object) => import('node:http').RequestListener;
  };
  const { NodePlugin } = fromBaseline('graphile-build') as { NodePlugin: unknown };
  const handler = postgraphile(PG_URL, SCHEMA, {
    skipPlugins: [NodePlugin],
    disableDefaultMutations: true,
    graphiql: false,
    disableQueryLog: true,
    retryOnInitFail: false,
  });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return { url: `http://${HOST}:${(server.address() as { port: number }).port}` };
}

async function runYoga(): Promise<Ready> {
  const { createSchema, createYoga } = await import('graphql-yoga');
  const yoga = createYoga({
    schema: createSchema({ typeDefs: 'type Query { hello: String }', resolvers: { Query: { hello: () => 'world' } } }),
    logging: false,
  });
  const server = createServer(yoga);
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return { url: `http://${HOST}:${(server.address() as { port: number }).port}` };
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

const roles = new Roles(fileURLToPath(import.meta.url), process.env.BENCH_CPU_PROF_DIR);

async function graphql(url: string, query: string, variables: object = {}, token: string | null = BENCH_TOKEN) {
  const res = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.body.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
  if (res.statusCode !== 200 || body.errors)
    throw new Error(`${url}: ${res.statusCode} ${JSON.stringify(body.errors)}`);
  return body.data as Record<string, unknown>;
}

/** The same rows for everyone: streamers and sessions created through StreamGate's API. */
async function seed(url: string): Promise<void> {
  const create = 'mutation($input: CreateStreamerInput!) { createStreamer(input: $input) { id } }';
  for (let i = 0; i < 100; i++) {
    const input = {
      name: `streamer-${String(i).padStart(3, '0')}`,
      host: `10.0.${i >> 8}.${i & 255}`,
      httpPort: 8080,
      apiPort: 8081,
    };
    await graphql(url, create, { input });
  }
  for (let i = 0; i < 40; i++) {
    await graphql(url, 'mutation($c: UUID!) { createSession(clientId: $c) { sessionId } }', { c: crypto.randomUUID() });
  }
}

async function resetSchema(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await client.end();
}

function target(
  name: string,
  server: { url: string; proc: import('node:child_process').ChildProcess },
  query: string,
  token: string | null = BENCH_TOKEN,
): Target {
  return {
    name,
    url: server.url,
    path: '/graphql',
    proc: server.proc,
    method: 'POST',
    body: JSON.stringify({ query }),
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  };
}

async function main() {
  installPostGraphile();
  const watchdog = roles.watchdog(WATCHDOG_MS);
  await resetSchema();
  const streamgate = await roles.spawn('streamgate', [`${PG_URL}?schema=${SCHEMA}`]);
  await seed(streamgate.url);
  // The same server without its response cache (RESPONSE_CACHE_TTL_MS=0), to show both.
  const [postgraphile, yoga, uncached, embedded, embeddedUncached, load] = await Promise.all([
    roles.spawn('postgraphile'),
    roles.spawn('yoga'),
    roles.spawn('uncached', [`${PG_URL}?schema=${SCHEMA}`]),
    roles.spawn('embedded', ['']),
    roles.spawn('embedded-uncached', ['']),
    roles.spawn('load'),
  ]);
  await seed(embedded.url);
  await seed(embeddedUncached.url);
  const firstStreamer = (await graphql(streamgate.url, '{ streamers(first: 1) { edges { node { id } } } }')) as {
    streamers: { edges: { node: { id: string } }[] };
  };
  const id = firstStreamer.streamers.edges[0]?.node.id as string;

  const groups: Record<string, Target[]> = {
    streamers: [
      target(
        'postgraphile',
        postgraphile,
        '{ allNodes(first: 20, condition: { kind: STREAMER }, orderBy: ID_ASC) { nodes { id name status } } }',
        null,
      ),
      target('streamgate', streamgate, '{ streamers(first: 20) { edges { node { id name status } } } }'),
      target('uncached', uncached, '{ streamers(first: 20) { edges { node { id name status } } } }'),
      target('embedded', embedded, '{ streamers(first: 20) { edges { node { id name status } } } }'),
      target('embedded-uncached', embeddedUncached, '{ streamers(first: 20) { edges { node { id name status } } } }'),
    ],
    sessions: [
      target(
        'postgraphile',
        postgraphile,
        '{ allSessions(first: 20, orderBy: ID_ASC) { nodes { id status createdAt } } }',
        null,
      ),
      target('streamgate', streamgate, '{ sessions(first: 20) { edges { node { id status createdAt } } } }'),
      target('uncached', uncached, '{ sessions(first: 20) { edges { node { id status createdAt } } } }'),
    ],
    events: [
      target(
        'postgraphile',
        postgraphile,
        '{ allEventLogs(first: 20, orderBy: SEQ_DESC) { nodes { seq severity message createdAt } } }',
        null,
      ),
      target('streamgate', streamgate, '{ events(first: 20) { edges { node { id severity message createdAt } } } }'),
      target('uncached', uncached, '{ events(first: 20) { edges { node { id severity message createdAt } } } }'),
    ],
    node: [
      target(
        'postgraphile',
        postgraphile,
        `{ nodeById(id: "${id}") { id name status healthLatencyMs lastPingedAt } }`,
        null,
      ),
      target('streamgate', streamgate, `{ streamer(id: "${id}") { id name health { status latencyMs checkedAt } } }`),
      target('uncached', uncached, `{ streamer(id: "${id}") { id name health { status latencyMs checkedAt } } }`),
    ],
    overhead: [target('yoga', yoga, '{ hello }', null), target('streamgate', streamgate, '{ __typename }')],
  };
  for (const group of Object.values(groups)) {
    for (const t of group) {
      const res = await request(`${t.url}${t.path}`, { method: 'POST', headers: t.headers, body: t.body ?? null });
      const text = await res.body.text();
      if (res.statusCode !== 200 || text.includes('"errors"'))
        throw new Error(`${t.name} answered ${res.statusCode}: ${text.slice(0, 300)}`);
    }
  }

  console.log(
    `reads bench: ${CONNECTIONS} connections, ${KNOBS.warmupSeconds} s warm-up + ${KNOBS.seconds} s per target, ` +
      `${KNOBS.rounds} round(s); 100 streamers, 40 sessions; node ${process.version}\n`,
  );
  const opts = { ...KNOBS, connections: CONNECTIONS };
  for (const [name, targets] of Object.entries(groups)) {
    if (ONLY && !ONLY.includes(name)) continue;
    console.log(`\n### ${name}\n`);
    const summary = await compareThroughput(load.proc, targets, opts);
    const [baseline, ours] = [summary[targets[0]?.name ?? ''], summary.streamgate];
    if (baseline && ours) printRatio(`streamgate ÷ ${targets[0]?.name}`, ours, baseline);
    if (baseline && summary.uncached) printRatio(`uncached ÷ ${targets[0]?.name}`, summary.uncached, baseline);
  }
  if (!ONLY || ONLY.includes('soak')) {
    const mixed = Object.values(groups).flatMap((g) => g.filter((t) => t.name === 'streamgate'));
    await soak(streamgate.url, streamgate.proc.pid as number, mixed);
  }
  clearTimeout(watchdog);
  await roles.stopAll();
}

/**
 * Open loop: SOAK_RATE req/s of the mixed reads (round robin) for SOAK_SECONDS, whatever the
 * answers take (at most 512 in flight), with the server's RSS sampled every second. Its memory
 * should reach a plateau and stay there.
 */
async function soak(url: string, pid: number, targets: readonly Target[]): Promise<void> {
  const pool = new Pool(url, { connections: CONNECTIONS, keepAliveTimeout: 60_000 });
  const rss: number[] = [];
  let sent = 0;
  let answered = 0;
  let failed = 0;
  let inFlight = 0;
  const started = performance.now();
  const sampler = setInterval(() => rss.push(procMemory(pid)?.rss ?? Number.NaN), 1_000);
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.floor(((performance.now() - started) / 1000) * SOAK_RATE);
      if (performance.now() - started >= SOAK_SECONDS * 1000) {
        clearInterval(tick);
        return resolve();
      }
      for (; sent < due && inFlight < 512; sent++) {
        const t = targets[sent % targets.length] as Target;
        inFlight++;
        pool
          .request({ path: t.path, method: 'POST', headers: t.headers, body: t.body ?? null })
          .then(async (res) => {
            await res.body.arrayBuffer();
            if (res.statusCode === 200) answered++;
            else failed++;
          })
          .catch(() => failed++)
          .finally(() => inFlight--);
      }
    }, 5);
  });
  clearInterval(sampler);
  await pool.close();
  const mbOf = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
  const window = (from: number, to: number) => Math.max(...rss.slice(from, to));
  const early = window(5, Math.floor(SOAK_SECONDS / 3));
  const late = window(Math.floor((2 * SOAK_SECONDS) / 3), rss.length);
  console.log(
    `\n### soak: ${SOAK_RATE} req/s of mixed reads for ${SOAK_SECONDS} s (PostgreSQL)\n\n` +
      `${answered} answered, ${failed} failed, ${sent} sent; RSS at 5 s ${mbOf(rss[4] ?? Number.NaN)}, ` +
      `max in the first third ${mbOf(early)}, max in the last third ${mbOf(late)} (×${(late / early).toFixed(2)})`,
  );
}

await roles.entry(main, (role, [databaseUrl = '']) => {
  switch (role) {
    case 'streamgate':
    case 'embedded':
      return runStreamGate(databaseUrl);
    case 'uncached':
    case 'embedded-uncached':
      return runStreamGate(databaseUrl, false);
    case 'postgraphile':
      return runPostGraphile();
    default:
      return runYoga();
  }
});
