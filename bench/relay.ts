/**
 * Live-session relay benchmark: StreamGate's `/ws/stream/…` relay and its GraphQL `streamFrames`
 * subscription against a naive `ws` broadcast loop (the floor), in the same run.
 *
 * What runs, each in its own process (this file, forked with a role argument):
 *   - server      either the real app (`createApp`, in-memory PGlite, NODE_ENV=production) or the
 *                 floor: a bare `ws` server whose publisher's messages are sent to every connected
 *                 socket in a loop (`for (c of clients) c.send(data)`: no limits, no bookkeeping);
 *   - publisher   an open-loop sender: frame i leaves at start + i/fps whatever happened before,
 *                 each frame carrying `process.hrtime.bigint()` (CLOCK_MONOTONIC, one clock for
 *                 every process on the machine) and its sequence number in its first 12 bytes;
 *   - receivers   BENCH_RECEIVER_PROCS processes sharing the operators (raw WebSockets) or the
 *                 graphql-ws subscribers; each records publisher→receiver latency per frame, and
 *                 checks order and byte count.
 *
 * Scenarios (each on the floor and on StreamGate):
 *   1. 64 KiB binary frames at 30 fps to 50 and to 200 raw operators: p50/p99 latency,
 *      delivered/expected, delivered throughput (MB/s) and its ratio to the floor's.
 *   2. The same to 50 operators of which one stops reading (its socket paused): the other 49's p99
 *      against scenario 1's, and the server's RSS (sampled from /proc) during the run. StreamGate
 *      drops the stalled operator (close 4408); the floor buffers for it without limit.
 *   3. 1 KiB frames at 10/s to 500 GraphQL `streamFrames` subscribers over graphql-ws, and the same
 *      to 500 raw operators (the ratio of the two is the cost of GraphQL).
 *
 * Run: `npx tsx bench/relay.ts` (~3 minutes; Linux for RSS; only 127.0.0.1).
 * Knobs: BENCH_SECONDS (per measurement, default 10), BENCH_RECEIVER_PROCS (2),
 * BENCH_SCENARIOS (comma list of raw50,raw200,stall,gql500; default all).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-ws';
import { WebSocket, WebSocketServer } from 'ws';
import { BENCH_TOKEN, startBenchStreamGate } from './lib/streamgate.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RECEIVER_PROCS = Number(process.env.BENCH_RECEIVER_PROCS ?? 2);
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'raw50,raw200,stall,gql500').split(',');
/** Frames sent in the first second are not measured (connections and JIT warming up). */
const WARMUP_SECONDS = 1;
/** After the last frame, how long receivers may take to get the rest before it counts as lost. */
const DRAIN_MS = 3_000;
const WATCHDOG_MS = 10 * 60_000;

const TOKEN = BENCH_TOKEN;
const HOST = '127.0.0.1';

type Target = 'floor' | 'streamgate';
type Role = 'server' | 'publisher' | 'receivers';

/** Where clients connect for one scenario run. */
interface Endpoints {
  target: Target;
  publisherUrl: string;
  /** Raw operator URL for operator i (`{i}` replaced). */
  operatorUrl: string;
  /** For GraphQL subscribers: the graphql-ws URL and the session id. */
  graphqlUrl?: string;
  sessionId?: string;
}

interface ReceiveJob {
  endpoints: Endpoints;
  kind: 'raw' | 'graphql';
  /** Operator indexes this process runs. */
  from: number;
  to: number;
  /** Index of an operator that stops reading once connected (scenario 2), or -1. */
  stalled: number;
  /** Sequence numbers ≥ this are measured. */
  measureFrom: number;
}

interface ReceiveResult {
  latenciesMs: number[];
  received: number;
  bytes: number;
  outOfOrder: number;
  closedEarly: number;
  /** How the server closed the stalled operator (StreamGate: 4408), if it did. */
  stalledCloseCode?: number;
  firstAt: number;
  lastAt: number;
}

interface SendJob {
  url: string;
  fps: number;
  frameBytes: number;
  frames: number;
}

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

/** The floor: a naive broadcast loop. `/pub` publishes, anything else subscribes. */
async function runFloor(): Promise<string> {
  const wss = new WebSocketServer({ host: HOST, port: 0, maxPayload: 16 * 1024 * 1024 });
  const subscribers = new Set<WebSocket>();
  wss.on('connection', (ws, req) => {
    if (req.url?.startsWith('/pub')) {
      ws.on('message', (data, isBinary) => {
        for (const sub of subscribers) sub.send(data, { binary: isBinary });
      });
      return;
    }
    subscribers.add(ws);
    ws.on('close', () => subscribers.delete(ws));
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  return `ws://${HOST}:${(wss.address() as AddressInfo).port}`;
}

async function runStreamGate(): Promise<string> {
  const { url } = await startBenchStreamGate({
    host: HOST,
    env: { SESSION_MAX_OPERATORS: '1000', HEALTH_MONITOR: 'off', EVENT_LOG_MIN_SEVERITY: 'WARN' },
  });
  return url.replace(/^http/, 'ws');
}

/** Open loop: frame i is sent at start + i/fps, whether or not anything kept up. */
async function runPublisher(job: SendJob): Promise<{ sent: number; lateMsMax: number }> {
  const ws = new WebSocket(job.url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`publisher closed ${code}`)));
  });
  const payload = randomBytes(job.frameBytes);
  const periodMs = 1000 / job.fps;
  const start = performance.now();
  let lateMsMax = 0;
  for (let seq = 0; seq < job.frames; seq++) {
    const due = start + seq * periodMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    lateMsMax = Math.max(lateMsMax, performance.now() - due);
    // A fresh buffer per frame: the relay may still hold the previous one.
    const frame = Buffer.from(payload);
    frame.writeBigUInt64LE(process.hrtime.bigint(), 0);
    frame.writeUInt32LE(seq, 8);
    ws.send(frame, { binary: true });
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  ws.close();
  return { sent: job.frames, lateMsMax };
}

/** Raw operators or graphql-ws subscribers; resolves when told to stop. */
async function runReceivers(job: ReceiveJob, stop: Promise<void>, ready: () => void): Promise<ReceiveResult> {
  const result: ReceiveResult = {
    latenciesMs: [],
    received: 0,
    bytes: 0,
    outOfOrder: 0,
    closedEarly: 0,
    firstAt: Number.POSITIVE_INFINITY,
    lastAt: 0,
  };
  const lastSeq = new Map<number, number>();
  const onFrame = (index: number, frame: Buffer) => {
    const now = process.hrtime.bigint();
    // The stalled operator reads what its socket held before it paused: not a delivery to count.
    if (index === job.stalled) return;
    const seq = frame.readUInt32LE(8);
    if (seq !== (lastSeq.get(index) ?? -1) + 1) result.outOfOrder++;
    lastSeq.set(index, seq);
    result.received++;
    result.bytes += frame.length;
    const at = performance.timeOrigin + performance.now();
    result.firstAt = Math.min(result.firstAt, at);
    result.lastAt = at;
    if (seq >= job.measureFrom) result.latenciesMs.push(Number(now - frame.readBigUInt64LE(0)) / 1e6);
  };

  const closers: (() => void)[] = [];
  const opened: Promise<void>[] = [];
  for (let i = job.from; i < job.to; i++) {
    if (job.kind === 'raw') {
      const ws = new WebSocket(job.endpoints.operatorUrl.replace('{i}', String(i)));
      opened.push(
        new Promise((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        }),
      );
      if (i === job.stalled) ws.once('open', () => (ws as unknown as { _socket: { pause(): void } })._socket.pause());
      ws.on('message', (data: Buffer) => onFrame(i, data));
      ws.on('close', (code) => {
        if (i === job.stalled) result.stalledCloseCode = code;
        else result.closedEarly++;
      });
      closers.push(() => {
        ws.removeAllListeners('close');
        ws.terminate();
      });
    } else {
      const client = createClient({
        url: job.endpoints.graphqlUrl!,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        connectionParams: { authorization: `Bearer ${TOKEN}` },
      });
      opened.push(
        new Promise((resolve, reject) => {
          client.on('connected', () => resolve());
          client.on('error', reject);
        }),
      );
      client.subscribe<{ streamFrames: { data: string } }>(
        {
          query: `subscription($id: ID!) { streamFrames(sessionId: $id) { data } }`,
          variables: { id: job.endpoints.sessionId },
        },
        {
          next: (value) => {
            const data = value.data?.streamFrames.data;
            if (data) onFrame(i, Buffer.from(data, 'base64'));
          },
          error: () => result.closedEarly++,
          complete: () => {},
        },
      );
      closers.push(() => void client.dispose());
    }
  }
  await Promise.all(opened);
  // graphql-ws subscribes after connecting; give the subscribe messages a moment to land.
  await new Promise((resolve) => setTimeout(resolve, job.kind === 'graphql' ? 1_000 : 200));
  ready();
  await stop;
  for (const close of closers) close();
  return result;
}

async function child(role: Role) {
  process.on('disconnect', () => process.exit(0));
  if (role === 'server') {
    const target = process.argv[3] as Target;
    const url = target === 'floor' ? await runFloor() : await runStreamGate();
    process.send?.({ url });
    return;
  }
  if (role === 'publisher') {
    process.on('message', async (job: SendJob) => process.send?.(await runPublisher(job)));
    process.send?.({ url: '' });
    return;
  }
  process.on('message', (job: ReceiveJob | 'stop') => {
    if (job === 'stop') return; // for the running job's own listener
    let release!: () => void;
    const stop = new Promise<void>((resolve) => (release = resolve));
    const onStop = (message: unknown) => {
      if (message === 'stop') {
        process.off('message', onStop);
        release();
      }
    };
    process.on('message', onStop);
    void runReceivers(job, stop, () => process.send?.('ready')).then(
      (result) => process.send?.(result),
      (error: unknown) => {
        console.error('receivers failed:', error);
        process.exit(1);
      },
    );
  });
  process.send?.({ url: '' });
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

const children: ChildProcess[] = [];

function spawn(role: Role, ...args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const proc = fork(fileURLToPath(import.meta.url), [role, ...args], {
    execArgv: process.execArgv,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(proc);
  return new Promise((resolve, reject) => {
    proc.once('message', (ready: { url: string }) => resolve({ proc, url: ready.url }));
    proc.once('exit', (code) => reject(new Error(`${role} exited (${code}) before it was ready`)));
  });
}

function once<T>(proc: ChildProcess, match: (message: unknown) => boolean): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if (!match(message)) return;
      proc.off('message', onMessage);
      resolve(message as T);
    };
    proc.on('message', onMessage);
  });
}

function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
  } catch {
    return Number.NaN;
  }
}

/** A fresh session on StreamGate (publisher URL with its key), or the floor's fixed paths. */
async function endpointsFor(target: Target, base: string): Promise<Endpoints> {
  if (target === 'floor') {
    return { target, publisherUrl: `${base}/pub`, operatorUrl: `${base}/sub/{i}` };
  }
  const clientId = randomUUID();
  const res = await fetch(`${base.replace(/^ws/, 'http')}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      query: 'mutation($c: UUID!) { createSession(clientId: $c) { sessionId streamKey } }',
      variables: { c: clientId },
    }),
  });
  const body = (await res.json()) as { data?: { createSession: { sessionId: string; streamKey: string } } };
  const session = body.data?.createSession;
  if (!session) throw new Error(`createSession failed: ${JSON.stringify(body)}`);
  const stream = `${base}/ws/stream/${session.sessionId}`;
  return {
    target,
    publisherUrl: `${stream}/${clientId}?key=${encodeURIComponent(session.streamKey)}`,
    operatorUrl: `${stream}/op-{i}?access_token=${TOKEN}`,
    graphqlUrl: `${base}/graphql`,
    sessionId: session.sessionId,
  };
}

/** `session.operator_dropped` events for one session (StreamGate's drops with close 4408). */
async function droppedOperators(base: string, sessionId: string): Promise<number> {
  const res = await fetch(`${base.replace(/^ws/, 'http')}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      query: '{ events(source: "sessions", severity: [WARN], first: 100) { edges { node { type details } } } }',
    }),
  });
  const body = (await res.json()) as {
    data?: { events: { edges: { node: { type: string; details: { sessionId?: string } } }[] } };
  };
  return (body.data?.events.edges ?? []).filter(
    (e) => e.node.type === 'session.operator_dropped' && e.node.details.sessionId === sessionId,
  ).length;
}

interface Measurement {
  p50: number;
  p99: number;
  delivered: number;
  expected: number;
  outOfOrder: number;
  closedEarly: number;
  stalledCloseCode: number | undefined;
  mbPerSecond: number;
  rssPeak: number;
  rssBefore: number;
}

async function measure(
  server: { proc: ChildProcess; url: string },
  target: Target,
  opts: { kind: 'raw' | 'graphql'; receivers: number; fps: number; frameBytes: number; stalled?: boolean },
  publisher: ChildProcess,
  receiverProcs: ChildProcess[],
): Promise<Measurement> {
  const endpoints = await endpointsFor(target, server.url);
  const frames = Math.round((SECONDS + WARMUP_SECONDS) * opts.fps);
  const measureFrom = WARMUP_SECONDS * opts.fps;
  const stalled = opts.stalled ? 0 : -1;
  const per = Math.ceil(opts.receivers / receiverProcs.length);
  const jobs = receiverProcs.map((proc, p) => ({
    proc,
    job: {
      endpoints,
      kind: opts.kind,
      from: p * per,
      to: Math.min(opts.receivers, (p + 1) * per),
      stalled,
      measureFrom,
    } satisfies ReceiveJob,
  }));
  await Promise.all(
    jobs.map(({ proc, job }) => {
      const ready = once(proc, (m) => m === 'ready');
      proc.send(job);
      return ready;
    }),
  );
  const rssBefore = rssOf(server.proc.pid!);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssOf(server.proc.pid!))), 50);
  const sent = once<{ sent: number }>(publisher, (m) => typeof m === 'object' && m !== null && 'sent' in m);
  publisher.send({ url: endpoints.publisherUrl, fps: opts.fps, frameBytes: opts.frameBytes, frames } satisfies SendJob);
  await sent;
  await new Promise((resolve) => setTimeout(resolve, DRAIN_MS));
  clearInterval(sampler);
  const results = await Promise.all(
    jobs.map(({ proc }) => {
      const result = once<ReceiveResult>(proc, (m) => typeof m === 'object' && m !== null && 'received' in m);
      proc.send('stop');
      return result;
    }),
  );
  // A paused socket never reads its close frame; StreamGate's own event log says whether it
  // dropped the stalled operator.
  const dropped =
    opts.stalled && target === 'streamgate' ? await droppedOperators(server.url, endpoints.sessionId!) : 0;
  const latencies = results.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  const healthy = opts.receivers - (opts.stalled ? 1 : 0);
  const delivered = results.reduce((a, r) => a + r.received, 0);
  const bytes = results.reduce((a, r) => a + r.bytes, 0);
  const first = Math.min(...results.map((r) => r.firstAt));
  const last = Math.max(...results.map((r) => r.lastAt));
  return {
    p50: pct(50),
    p99: pct(99),
    delivered,
    expected: healthy * frames,
    outOfOrder: results.reduce((a, r) => a + r.outOfOrder, 0),
    closedEarly: results.reduce((a, r) => a + r.closedEarly, 0),
    stalledCloseCode: dropped > 0 ? 4408 : results.find((r) => r.stalledCloseCode !== undefined)?.stalledCloseCode,
    mbPerSecond: bytes / 1024 / 1024 / ((last - first) / 1000),
    rssBefore,
    rssPeak,
  };
}

const f = (n: number, digits = 1) => (Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const mb = (bytes: number) => f(bytes / 1024 / 1024);

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
    for (const proc of children) proc.kill();
    process.exit(1);
  }, WATCHDOG_MS);

  console.log(
    `relay bench: ${SECONDS} s measured (+${WARMUP_SECONDS} s warm-up) per run, ${RECEIVER_PROCS} receiver processes, ` +
      `open-loop publisher; node ${process.version}\n`,
  );
  const rows: string[] = [];
  const report = (scenario: string, target: Target, m: Measurement, extra = '') => {
    const row =
      `| ${scenario} | ${target} | ${f(m.p50, 2)} | ${f(m.p99, 2)} | ${m.delivered}/${m.expected} | ${m.outOfOrder} | ` +
      `${m.closedEarly} | ${f(m.mbPerSecond)} | ${mb(m.rssBefore)} → ${mb(m.rssPeak)} MB |${extra}`;
    rows.push(row);
    console.log(row);
  };

  const publisher = await spawn('publisher');
  const receiverProcs = await Promise.all(Array.from({ length: RECEIVER_PROCS }, () => spawn('receivers')));
  const byScenario: Record<string, Partial<Record<Target, Measurement>>> = {};

  for (const target of ['floor', 'streamgate'] as const) {
    // A fresh server per target: RSS and heap start from the same place.
    const server = await spawn('server', target);
    const run = async (
      name: string,
      opts: { kind: 'raw' | 'graphql'; receivers: number; fps: number; frameBytes: number; stalled?: boolean },
    ) => {
      if (!SCENARIOS.includes(name.split(':')[0]!)) return;
      if (opts.kind === 'graphql' && target === 'floor') return;
      const m = await measure(
        server,
        target,
        opts,
        publisher.proc,
        receiverProcs.map((r) => r.proc),
      );
      byScenario[name] = { ...byScenario[name], [target]: m };
      report(
        name,
        target,
        m,
        opts.stalled
          ? ` stalled operator: ${m.stalledCloseCode ? `dropped (${m.stalledCloseCode})` : 'still connected'} |`
          : '',
      );
    };
    await run('raw50', { kind: 'raw', receivers: 50, fps: 30, frameBytes: 64 * 1024 });
    await run('raw200', { kind: 'raw', receivers: 200, fps: 30, frameBytes: 64 * 1024 });
    await run('stall', { kind: 'raw', receivers: 50, fps: 30, frameBytes: 64 * 1024, stalled: true });
    await run('gql500:raw', { kind: 'raw', receivers: 500, fps: 10, frameBytes: 1024 });
    await run('gql500', { kind: 'graphql', receivers: 500, fps: 10, frameBytes: 1024 });
    server.proc.kill();
  }

  console.log(
    '\n| scenario | target | p50 (ms) | p99 (ms) | delivered/expected | out of order | closed early | MB/s | server RSS before → peak |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---|');
  for (const row of rows) console.log(row);
  console.log('');
  const ratio = (name: string, pick: (m: Measurement) => number) => {
    const s = byScenario[name]?.streamgate;
    const fl = byScenario[name]?.floor;
    return s && fl ? f(pick(s) / pick(fl), 2) : 'n/a';
  };
  for (const name of ['raw50', 'raw200']) {
    console.log(
      `${name}: streamgate ÷ floor throughput ×${ratio(name, (m) => m.mbPerSecond)}, p99 ×${ratio(name, (m) => m.p99)}`,
    );
  }
  const stall = byScenario.stall?.streamgate;
  const base = byScenario.raw50?.streamgate;
  if (stall && base) console.log(`stall: healthy operators' p99 ×${f(stall.p99 / base.p99, 2)} of raw50's`);
  const gql = byScenario.gql500?.streamgate;
  const raw500 = byScenario['gql500:raw']?.streamgate;
  if (gql && raw500)
    console.log(`gql500: GraphQL p99 ×${f(gql.p99 / raw500.p99, 2)} of the raw path's at the same load`);

  clearTimeout(watchdog);
  for (const proc of children) proc.kill();
}

const role = process.argv[2] as Role | undefined;
if (role) {
  void child(role);
} else {
  main().catch((error: unknown) => {
    console.error(error);
    for (const proc of children) proc.kill();
    process.exit(1);
  });
}
