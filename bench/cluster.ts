/**
 * Cluster benchmark (issue 22): `healthChanged` fan-out to BENCH_SUBSCRIBERS subscribers, on one
 * instance, then spread over two instances on PostgreSQL + Redis, in one run.
 *
 * What runs:
 *   - `streamgate serve` processes (tsx), NODE_ENV=production, on schema `bench_cluster` of the
 *     local PostgreSQL (dropped and re-created per scenario); the cluster scenario adds REDIS_URL;
 *   - one fake node API in this process (`GET /api/ping`, 200 or 503 on demand), behind
 *     BENCH_NODES streamers; the health interval is 1 s and both thresholds 1, so flipping the
 *     node makes BENCH_NODES transitions within about a second;
 *   - the subscribers, in this process: graphql-ws clients (BENCH_SUBSCRIBERS / 10 sockets, 10
 *     subscriptions each), split evenly over the instances.
 * Each scenario flips the node down, then up, BENCH_FLIPS times. For every delivery: latency from
 * the transition's `at` (when the leader decided it) to its arrival here; and how many arrived
 * of those expected (subscribers × transitions). In the cluster, half the subscribers are on the
 * follower: their transitions come through Redis.
 *
 * The relay part of the issue (64 KiB frames, publisher on A, operators on B) waits for the relay
 * to cross instances.
 *
 * Run: `npm run bench:cluster` (~1 minute). Knobs: BENCH_SUBSCRIBERS (1000), BENCH_NODES (20),
 * BENCH_FLIPS (3), BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/test), BENCH_REDIS_URL
 * (redis://127.0.0.1:6379).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Client, createClient } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { BENCH_TOKEN } from './lib/streamgate.js';

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const NODES = Number(process.env.BENCH_NODES ?? 20);
const FLIPS = Number(process.env.BENCH_FLIPS ?? 3);
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SCHEMA = 'bench_cluster';
const PER_SOCKET = 10;
const ROOT = fileURLToPath(new URL('../', import.meta.url));

interface Instance {
  url: string;
  proc: ChildProcess;
}

let nodeUp = true;

async function startFakeNode(): Promise<number> {
  const server = createServer((_req, res) => {
    res.writeHead(nodeUp ? 200 : 503, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return (server.address() as AddressInfo).port;
}

async function resetSchema(): Promise<string> {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await admin.query(`CREATE SCHEMA "${SCHEMA}"`);
  await admin.end();
  const url = new URL(PG_URL);
  url.searchParams.set('schema', SCHEMA);
  return url.toString();
}

async function startInstance(env: Record<string, string>, port: number): Promise<Instance> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_TOKEN: BENCH_TOKEN,
      HEALTH_MONITOR: 'on',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"StreamGate ready"'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    proc.once('exit', (code) => reject(new Error(`instance exited (${code}) before ready:\n${out}`)));
  });
  proc.stdout?.removeAllListeners('data');
  proc.stdout?.resume();
  return { url, proc };
}

async function gql(instance: Instance, query: string): Promise<unknown> {
  const res = await fetch(`${instance.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_TOKEN}` },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { data?: unknown; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

interface Tally {
  latencies: number[];
  received: number;
}

/** `count` subscriptions to healthChanged on `instance`, PER_SOCKET per socket; resolves once all are live. */
async function subscribe(instance: Instance, count: number, tally: Tally): Promise<Client[]> {
  const clients: Client[] = [];
  const started: Promise<void>[] = [];
  for (let i = 0; i < count; i += PER_SOCKET) {
    const client = createClient({
      url: `${instance.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      connectionParams: { authorization: `Bearer ${BENCH_TOKEN}` },
    });
    clients.push(client);
    started.push(new Promise<void>((resolve) => client.on('connected', () => resolve())));
    for (let j = 0; j < Math.min(PER_SOCKET, count - i); j++) {
      client.subscribe<{ healthChanged: { at: string } }>(
        { query: 'subscription { healthChanged(subjectKinds: [NODE]) { at } }' },
        {
          next: (msg) => {
            const at = msg.data?.healthChanged.at;
            if (!at) return;
            tally.received++;
            tally.latencies.push(Date.now() - Date.parse(at));
          },
          error: () => {},
          complete: () => {},
        },
      );
    }
  }
  await Promise.all(started);
  await new Promise((r) => setTimeout(r, 500)); // subscriptions registered on the server
  return clients;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function scenario(name: string, clustered: boolean, nodePort: number): Promise<Tally[]> {
  const database = await resetSchema();
  const env: Record<string, string> = { DATABASE_URL: database, ...(clustered ? { REDIS_URL } : {}) };
  const instances = [await startInstance({ ...env, INSTANCE_ID: `${name}-a` }, 41_000)];
  if (clustered) instances.push(await startInstance({ ...env, INSTANCE_ID: `${name}-b` }, 41_001));
  const [first] = instances as [Instance];
  await gql(
    first,
    'mutation { updateSettings(input: { healthCheckIntervalSeconds: 1, healthFailureThreshold: 1, healthSuccessThreshold: 1 }) { staleThresholdDays } }',
  );
  nodeUp = true;
  for (let i = 0; i < NODES; i++) {
    await gql(
      first,
      `mutation { createStreamer(input: { name: "n${i}", host: "127.0.0.1", httpPort: 1, apiPort: ${nodePort} }) { id } }`,
    );
  }
  await new Promise((r) => setTimeout(r, 4_000)); // every node HEALTHY, each instance settled
  const tallies = instances.map(() => ({ latencies: [] as number[], received: 0 }));
  const per = Math.floor(SUBSCRIBERS / instances.length);
  const clients = (await Promise.all(instances.map((inst, i) => subscribe(inst, per, tallies[i] as Tally)))).flat();
  for (let flip = 0; flip < FLIPS * 2; flip++) {
    nodeUp = !nodeUp;
    await new Promise((r) => setTimeout(r, 3_000));
  }
  const expected = per * NODES * FLIPS * 2;
  const { cluster } = (await gql(first, '{ cluster { leader } }')) as { cluster: { leader: string | null } };
  console.log(
    `\n### ${name}: ${instances.length} instance(s), ${per * instances.length} subscribers, leader ${cluster.leader}\n`,
  );
  console.log('| instance | received / expected | p50 ms | p99 ms | max ms |');
  console.log('|---|---:|---:|---:|---:|');
  tallies.forEach((t, i) => {
    const label = instances.length === 1 ? 'only' : i === 0 ? 'a' : 'b';
    console.log(
      `| ${label} | ${t.received} / ${expected} | ${percentile(t.latencies, 50)} | ${percentile(t.latencies, 99)} | ${Math.max(...t.latencies)} |`,
    );
  });
  await Promise.all(clients.map((c) => c.dispose()));
  for (const inst of instances) {
    inst.proc.kill('SIGTERM');
    await new Promise((r) => inst.proc.once('exit', r));
  }
  return tallies;
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error('cluster bench: watchdog fired after 10 minutes');
    process.exit(1);
  }, 10 * 60_000);
  watchdog.unref();
  const nodePort = await startFakeNode();
  console.log(
    `cluster bench: healthChanged fan-out, ${SUBSCRIBERS} subscribers, ${NODES} nodes flipped ${FLIPS * 2} times; node ${process.version}`,
  );
  const [single] = await scenario('single', false, nodePort);
  const cluster = await scenario('cluster', true, nodePort);
  const all = cluster.flatMap((t) => t.latencies);
  const ratio = (p: number) => (percentile(all, p) / percentile(single?.latencies ?? [], p)).toFixed(2);
  console.log(`\ncluster ÷ single: p50 ×${ratio(50)}, p99 ×${ratio(99)}`);
  clearTimeout(watchdog);
  process.exit(0);
}

await main();
