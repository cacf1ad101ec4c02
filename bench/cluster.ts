/**
 * Cluster benchmark (issue 22), two parts, each a single-instance baseline and a two-instance run
 * on PostgreSQL + Redis in the same run:
 *
 * Relay: a publisher sends BENCH_FRAME_BYTES (64 KiB) binary frames at 30 fps for
 * BENCH_RELAY_SECONDS (10) to BENCH_OPERATORS (100) raw operators. Single: publisher and operators
 * on one instance. Cluster: the publisher on A, every operator on B, so each frame crosses Redis;
 * then two instances with every operator on A, where the frames should stay off Redis. The bytes
 * Redis read during each clustered run are reported (INFO stats).
 * Each frame carries its send time (performance.now(), publisher and operators being in this
 * process): latency is send → arrival at an operator; loss is expected − received; order is
 * checked per operator.
 *
 * Health: `healthChanged` fan-out to BENCH_SUBSCRIBERS subscribers, on one instance, then spread
 * over two.
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
 * Run: `npm run bench:cluster` (~2 minutes). Knobs: BENCH_PART (relay, health or all),
 * BENCH_OPERATORS (100), BENCH_FRAME_BYTES (65536), BENCH_RELAY_SECONDS (10), BENCH_SUBSCRIBERS
 * (1000), BENCH_NODES (20), BENCH_FLIPS (3), BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/test),
 * BENCH_REDIS_URL (redis://127.0.0.1:6379).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type Client, createClient } from 'graphql-ws';
import { Redis } from 'ioredis';
import pg from 'pg';
import WebSocket from 'ws';
import { BENCH_TOKEN } from './lib/streamgate.js';

const PART = process.env.BENCH_PART ?? 'all';
const OPERATORS = Number(process.env.BENCH_OPERATORS ?? 100);
const FRAME_BYTES = Number(process.env.BENCH_FRAME_BYTES ?? 64 * 1024);
const RELAY_SECONDS = Number(process.env.BENCH_RELAY_SECONDS ?? 10);
const FPS = 30;
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
  await stopAll(instances);
  return tallies;
}

interface RelayTally {
  latencies: number[];
  received: number;
  outOfOrder: number;
}

async function stopAll(instances: Instance[]): Promise<void> {
  for (const inst of instances) {
    inst.proc.kill('SIGTERM');
    await new Promise((r) => inst.proc.once('exit', r));
  }
}

/** Connects `count` raw operators to the session on `instance`; each tallies latency and order. */
async function operators(
  instance: Instance,
  sessionId: string,
  count: number,
  tally: RelayTally,
): Promise<WebSocket[]> {
  const base = `${instance.url.replace('http', 'ws')}/ws/stream/${sessionId}`;
  const sockets = Array.from({ length: count }, (_, i) => {
    const ws = new WebSocket(`${base}/op-${i}`, { headers: { authorization: `Bearer ${BENCH_TOKEN}` } });
    let last = -1;
    ws.on('message', (data: Buffer) => {
      const n = data.readUInt32BE(0);
      if (n === 0xffffffff) return; // priming
      tally.received++;
      tally.latencies.push(performance.now() - data.readDoubleBE(4));
      if (n <= last) tally.outOfOrder++;
      last = n;
    });
    return ws;
  });
  await Promise.all(sockets.map((ws) => new Promise((resolve) => ws.once('open', resolve))));
  return sockets;
}

/** Bytes the Redis at REDIS_URL has read from its clients so far. */
async function redisInput(): Promise<number> {
  const client = new Redis(REDIS_URL);
  try {
    return Number(/total_net_input_bytes:(\d+)/.exec(await client.info('stats'))?.[1]);
  } finally {
    client.disconnect();
  }
}

/** Operators on the publisher's instance (`A → A`) or on the other one (`A → B`). */
async function relayScenario(name: string, clustered: boolean, operatorsOn: 'A' | 'B'): Promise<RelayTally> {
  const database = await resetSchema();
  const env: Record<string, string> = {
    DATABASE_URL: database,
    HEALTH_MONITOR: 'off',
    SESSION_MAX_OPERATORS: String(OPERATORS + 10),
    ...(clustered ? { REDIS_URL } : {}),
  };
  const a = await startInstance({ ...env, INSTANCE_ID: `${name}-a` }, 41_010);
  const instances = clustered ? [a, await startInstance({ ...env, INSTANCE_ID: `${name}-b` }, 41_011)] : [a];
  const watched = operatorsOn === 'B' ? (instances[1] as Instance) : a;
  const clientId = randomUUID();
  const { createSession } = (await gql(
    a,
    `mutation { createSession(clientId: "${clientId}") { sessionId streamKey } }`,
  )) as { createSession: { sessionId: string; streamKey: string } };
  const tally: RelayTally = { latencies: [], received: 0, outOfOrder: 0 };
  const sockets = await operators(watched, createSession.sessionId, OPERATORS, tally);
  const pub = new WebSocket(
    `${a.url.replace('http', 'ws')}/ws/stream/${createSession.sessionId}/${clientId}?key=${encodeURIComponent(createSession.streamKey)}`,
  );
  await new Promise((resolve) => pub.once('open', resolve));
  // Until a priming frame reaches the operators, they are not all attached.
  const primer = Buffer.alloc(12);
  primer.writeUInt32BE(0xffffffff, 0);
  const heard = new Set<WebSocket>();
  for (const ws of sockets) ws.on('message', () => heard.add(ws));
  while (heard.size < sockets.length) {
    pub.send(primer);
    await new Promise((r) => setTimeout(r, 100));
  }
  const frames = RELAY_SECONDS * FPS;
  const payload = randomBytes(FRAME_BYTES);
  const redisBefore = await redisInput();
  const started = performance.now();
  for (let n = 0; n < frames; n++) {
    const due = started + (n * 1000) / FPS;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const frame = Buffer.from(payload);
    frame.writeUInt32BE(n, 0);
    frame.writeDoubleBE(performance.now(), 4);
    pub.send(frame);
  }
  await new Promise((r) => setTimeout(r, 2_000)); // the last frames in flight
  const redisMb = ((await redisInput()) - redisBefore) / 1e6;
  const expected = frames * OPERATORS;
  console.log(
    `| ${name} | A → ${operatorsOn} | ${tally.received} / ${expected} | ${tally.outOfOrder} | ${percentile(tally.latencies, 50).toFixed(1)} | ${percentile(tally.latencies, 99).toFixed(1)} | ${Math.max(...tally.latencies).toFixed(1)} | ${clustered ? redisMb.toFixed(1) : '–'} |`,
  );
  pub.close();
  for (const ws of sockets) ws.terminate();
  await stopAll(instances);
  return tally;
}

async function relayPart(): Promise<void> {
  console.log(
    `\n## Relay: ${OPERATORS} raw operators, ${FRAME_BYTES} B binary frames at ${FPS} fps for ${RELAY_SECONDS} s\n`,
  );
  console.log(
    '| scenario | publisher → operators | received / expected | out of order | p50 ms | p99 ms | max ms | into Redis MB |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  const single = await relayScenario('single', false, 'A');
  const cluster = await relayScenario('cluster', true, 'B');
  // Two instances, nobody watching on B: the frames should stay off Redis (a probe a second).
  await relayScenario('cluster, operators on A', true, 'A');
  const ratio = (p: number) => (percentile(cluster.latencies, p) / percentile(single.latencies, p)).toFixed(2);
  console.log(`\ncluster ÷ single: p50 ×${ratio(50)}, p99 ×${ratio(99)}`);
}

async function healthPart(nodePort: number): Promise<void> {
  console.log(`\n## healthChanged fan-out: ${SUBSCRIBERS} subscribers, ${NODES} nodes flipped ${FLIPS * 2} times`);
  const [single] = await scenario('single', false, nodePort);
  const cluster = await scenario('cluster', true, nodePort);
  const all = cluster.flatMap((t) => t.latencies);
  const ratio = (p: number) => (percentile(all, p) / percentile(single?.latencies ?? [], p)).toFixed(2);
  console.log(`\ncluster ÷ single: p50 ×${ratio(50)}, p99 ×${ratio(99)}`);
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error('cluster bench: watchdog fired after 10 minutes');
    process.exit(1);
  }, 10 * 60_000);
  watchdog.unref();
  console.log(`cluster bench (${PART}); node ${process.version}`);
  if (PART === 'all' || PART === 'relay') await relayPart();
  if (PART === 'all' || PART === 'health') await healthPart(await startFakeNode());
  clearTimeout(watchdog);
  process.exit(0);
}

await main();
