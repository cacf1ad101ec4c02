/**
 * STREAM route benchmark: a 1 GiB TCP transfer through a STREAM route against the same transfer
 * straight to the upstream, in one run, so the result is a ratio on the same noisy machine.
 *
 * What runs, each in its own process (this file, forked with a role argument):
 *   - sink        a TCP server: `U` + bytes → counts them until the client's FIN, answers the
 *                 count; `D` → sends TRANSFER_MB MiB and ends;
 *   - streamgate  the real app (`createApp`, in-memory PGlite, NODE_ENV=production, logs silent)
 *                 with a routes file holding one STREAM route → the sink;
 *   - bare        the least a Node TCP proxy can be: `net.createServer` + `pipe` both ways, to
 *                 show what is Node's and the machine's and what is ours;
 *   - client      runs one transfer when asked (upload: write with backpressure, half-close, read
 *                 the count; download: read to the end) and reports the time.
 *
 * Measured: MiB/s for upload and download, direct, through the bare proxy and through the route,
 * ROUNDS rounds with the order rotated, and StreamGate's RSS before and at its peak during the
 * transfers through it. Target: route ÷ direct ≥ 0.8 both ways.
 *
 * Run: `npm run bench:streams` (~1 minute; Linux for the RSS part; only 127.0.0.1).
 * Knobs: BENCH_TRANSFER_MB (default 1024), BENCH_ROUNDS (3).
 */
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mb, mean, procMemory, type Ready, Roles, resetPeak } from './lib/http-load.js';
import { startBenchStreamGate } from './lib/streamgate.js';

const HOST = '127.0.0.1';
const TRANSFER_MB = Number(process.env.BENCH_TRANSFER_MB ?? 1024);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CHUNK = Buffer.alloc(1024 * 1024, 0x5a);
const WATCHDOG_MS = 10 * 60_000;

type Direction = 'upload' | 'download';

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

async function runSink(): Promise<Ready> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    let command: string | null = null;
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      if (command === null) {
        command = String.fromCharCode(chunk[0] ?? 0);
        bytes -= 1;
        if (command === 'D') void send(socket, TRANSFER_MB);
      }
      bytes += chunk.length;
    });
    socket.on('end', () => {
      if (command === 'U') socket.end(String(bytes));
    });
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  return { url: `tcp://${HOST}:${(server.address() as { port: number }).port}` };
}

/** Writes `megabytes` MiB with backpressure, then ends. */
async function send(socket: Socket, megabytes: number): Promise<void> {
  for (let i = 0; i < megabytes; i++) {
    if (!socket.write(CHUNK)) await once(socket, 'drain');
  }
  socket.end();
}

async function runStreamGate(sinkPort: string, listenPort: string): Promise<Ready> {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-bench-streams-'));
  const routesFile = join(dir, 'routes.yaml');
  writeFileSync(
    routesFile,
    `routes:\n  - alias: bench\n    listenPort: ${listenPort}\n    upstream: ${HOST}:${sinkPort}\n`,
  );
  await startBenchStreamGate({ host: HOST, env: { HEALTH_MONITOR: 'off', ROUTES_FILE: routesFile, PROXY_HOST: HOST } });
  return { url: `tcp://${HOST}:${listenPort}` };
}

/** A TCP proxy with nothing but Node's pipe, for comparison. */
async function runBare(sinkPort: string): Promise<Ready> {
  // The same socket options as the route.
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const upstream = connect({ host: HOST, port: Number(sinkPort), allowHalfOpen: true, noDelay: true });
    client.pipe(upstream).pipe(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  return { url: `tcp://${HOST}:${(server.address() as { port: number }).port}` };
}

interface TransferJob {
  port: number;
  direction: Direction;
}

/** One transfer; resolves to seconds taken (checked: every byte arrived). */
async function transfer({ port, direction }: TransferJob): Promise<number> {
  const socket = connect({ host: HOST, port, allowHalfOpen: true });
  await once(socket, 'connect');
  const started = performance.now();
  let received = 0;
  let answer = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (direction === 'upload') answer += chunk.toString();
  });
  const ended = once(socket, 'end');
  socket.write(direction === 'upload' ? 'U' : 'D');
  if (direction === 'upload') await send(socket, TRANSFER_MB);
  else socket.end();
  await ended;
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  const expected = TRANSFER_MB * CHUNK.length;
  const got = direction === 'upload' ? Number(answer) : received;
  if (got !== expected) throw new Error(`${direction}: ${got} bytes arrived, ${expected} sent`);
  return seconds;
}

async function runClient(): Promise<Ready> {
  process.on('message', async (job: TransferJob | string) => {
    if (typeof job === 'object') process.send?.({ seconds: await transfer(job) });
  });
  return { url: '' };
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

const roles = new Roles(fileURLToPath(import.meta.url));

function freePort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve) =>
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    }),
  );
}

function runTransfer(client: import('node:child_process').ChildProcess, job: TransferJob): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (message: { seconds?: number }) => {
      if (message.seconds === undefined) return;
      client.off('message', onMessage);
      resolve(message.seconds);
    };
    client.on('message', onMessage);
    client.send(job);
  });
}

const portOf = (url: string) => Number(new URL(url).port);

async function main() {
  const watchdog = roles.watchdog(WATCHDOG_MS);
  const sink = await roles.spawn('sink');
  const listenPort = await freePort();
  const [streamgate, bare, client] = await Promise.all([
    roles.spawn('streamgate', [String(portOf(sink.url)), String(listenPort)]),
    roles.spawn('bare', [String(portOf(sink.url))]),
    roles.spawn('client'),
  ]);
  const pid = streamgate.proc.pid as number;
  console.log(`STREAM route bench: ${TRANSFER_MB} MiB per transfer, ${ROUNDS} round(s); node ${process.version}\n`);

  const targets = { direct: portOf(sink.url), bare: portOf(bare.url), route: listenPort };
  const names = Object.keys(targets) as (keyof typeof targets)[];
  const results: Record<string, number[]> = {};
  const rssBefore = procMemory(pid)?.rss ?? Number.NaN;
  const peakResettable = resetPeak(pid);
  let sampledPeak = rssBefore;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, procMemory(pid)?.rss ?? 0);
  }, 5);
  for (let round = 0; round < ROUNDS; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length] as keyof typeof targets);
    for (const direction of ['upload', 'download'] as const) {
      for (const name of order) {
        const seconds = await runTransfer(client.proc, { port: targets[name], direction });
        const rate = TRANSFER_MB / seconds;
        const key = `${direction} ${name}`;
        results[key] = [...(results[key] ?? []), rate];
        console.log(
          `  round ${round + 1} ${key.padEnd(16)} ${rate.toFixed(0).padStart(6)} MiB/s  (${seconds.toFixed(2)} s)`,
        );
      }
    }
  }
  clearInterval(sampler);
  const hwm = peakResettable ? (procMemory(pid)?.hwm ?? Number.NaN) : Number.NaN;
  const rssPeak = Number.isNaN(hwm) ? sampledPeak : Math.max(sampledPeak, hwm);

  console.log(
    `\n| ${TRANSFER_MB} MiB | direct MiB/s | bare pipe MiB/s | route MiB/s | route ÷ direct | route ÷ bare |`,
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const direction of ['upload', 'download'] as const) {
    const [direct, bareRate, route] = names.map((name) => mean(results[`${direction} ${name}`] ?? [])) as number[];
    console.log(
      `| ${direction} | ${direct?.toFixed(0)} | ${bareRate?.toFixed(0)} | ${route?.toFixed(0)} | ` +
        `${((route ?? 0) / (direct ?? 1)).toFixed(2)} | ${((route ?? 0) / (bareRate ?? 1)).toFixed(2)} |`,
    );
  }
  console.log(
    `\nStreamGate RSS: ${mb(rssBefore)} before, ${mb(rssPeak)} at the peak (${mb(rssPeak - rssBefore)} for ` +
      `${2 * ROUNDS} transfers of ${TRANSFER_MB} MiB through the route)`,
  );
  clearTimeout(watchdog);
  await roles.stopAll();
}

await roles.entry(main, (role, [a = '', b = '']) => {
  switch (role) {
    case 'sink':
      return runSink();
    case 'streamgate':
      return runStreamGate(a, b);
    case 'bare':
      return runBare(a);
    default:
      return runClient();
  }
});
