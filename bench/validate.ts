/**
 * Proxy destination validation benchmark: `validateDestination` (SYNTAX → DNS → TCP → HTTP) on a
 * healthy local destination and on a dead port, each against the least work that answers the same
 * question, in the same run and interleaved run by run (ratios, on a noisy shared machine).
 *
 * Everything runs in this one process, on 127.0.0.1:
 *   - target      a node:http server answering `GET /` with 200 and a 3-byte body;
 *   - healthy     `validateDestination('http://127.0.0.1:{port}/')`, against the baseline: a raw
 *                 `net.connect` closed on connect, then a fresh undici `Client` doing the GET
 *                 (body dumped, client destroyed) — the pipeline's own network work with nothing
 *                 around it (the pipeline also opens a new connection per step and per run);
 *   - localhost   the same through a name (`http://localhost:{port}/`), against the same baseline
 *                 plus one `dns.lookup(…, { all: true })`;
 *   - dead port   `validateDestination` on a port bound then released (refused), against a raw
 *                 `net.connect` that gets the refusal: shows the pipeline returns when the refusal
 *                 arrives, not after its 5 s TCP bound.
 * Each case: BENCH_WARMUP unmeasured runs, then BENCH_RUNS measured ones; in each run the pipeline
 * and its baseline both go, in alternating order. Every result is checked (all four steps ok, or
 * the refusal hint on the dead port): a benchmark of wrong answers would be no benchmark.
 *
 * Run: `npm run bench:validate` (~3 s). Knobs: BENCH_RUNS (200), BENCH_WARMUP (20).
 */
import { lookup } from 'node:dns/promises';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { loadavg } from 'node:os';
import { Client } from 'undici';
import { validateDestination } from '../src/modules/proxies/validation/pipeline.js';
import type { ValidationResult } from '../src/modules/proxies/validation/types.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const WATCHDOG_MS = 5 * 60_000;
/** The target for a healthy local destination. */
const TARGET_MS = 50;

interface Case {
  name: string;
  pipeline: () => Promise<ValidationResult>;
  /** Throws when the pipeline's answer is not the one this case expects. */
  check: (result: ValidationResult) => void;
  baselineName: string;
  baseline: () => Promise<void>;
}

interface Measured {
  name: string;
  baselineName: string;
  pipeline: number[];
  baseline: number[];
  /** Per-step durations (the pipeline's own durationMs), by step name. */
  steps: Map<string, number[]>;
}

/** Resolves on connect, rejects with the socket error (a refusal is what the dead-port baseline wants). */
function rawConnect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', (error) => {
      socket.destroy();
      reject(error);
    });
  });
}

async function rawGet(origin: string): Promise<void> {
  const client = new Client(origin);
  try {
    const { statusCode, body } = await client.request({ method: 'GET', path: '/' });
    await body.dump();
    if (statusCode !== 200) throw new Error(`baseline GET answered ${statusCode}`);
  } finally {
    await client.destroy();
  }
}

function expectHealthy(result: ValidationResult) {
  if (!result.ok || result.steps.length !== 4) throw new Error(`expected a healthy result: ${JSON.stringify(result)}`);
}

function expectRefused(port: number) {
  return (result: ValidationResult) => {
    const tcp = result.steps[2];
    if (result.steps.length !== 3 || !tcp?.hint?.startsWith(`Port ${port} is not accepting connections`)) {
      throw new Error(`expected a refusal at TCP: ${JSON.stringify(result)}`);
    }
  };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

async function measure(c: Case): Promise<Measured> {
  const measured: Measured = {
    name: c.name,
    baselineName: c.baselineName,
    pipeline: [],
    baseline: [],
    steps: new Map(),
  };
  for (let i = 0; i < WARMUP + RUNS; i++) {
    let result: ValidationResult | undefined;
    const runPipeline = async () => {
      const ms = await timed(async () => (result = await c.pipeline()));
      c.check(result!);
      if (i < WARMUP) return;
      measured.pipeline.push(ms);
      for (const step of result!.steps) {
        const list = measured.steps.get(step.name) ?? [];
        list.push(step.durationMs);
        measured.steps.set(step.name, list);
      }
    };
    const runBaseline = async () => {
      const ms = await timed(c.baseline);
      if (i >= WARMUP) measured.baseline.push(ms);
    };
    // Alternate which goes first, so neither always runs on a warmer cache or a quieter moment.
    if (i % 2 === 0) {
      await runPipeline();
      await runBaseline();
    } else {
      await runBaseline();
      await runPipeline();
    }
  }
  return measured;
}

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

const ms = (value: number) => value.toFixed(2);

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`bench/validate: no result after ${WATCHDOG_MS / 1000} s, giving up`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();

  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const dead = await closedPort();

  const cases: Case[] = [
    {
      name: 'healthy, IP literal (`http://127.0.0.1:…/`)',
      pipeline: () => validateDestination(`${origin}/`),
      check: expectHealthy,
      baselineName: 'raw connect + undici GET',
      baseline: async () => {
        await rawConnect(port);
        await rawGet(origin);
      },
    },
    {
      name: 'healthy, by name (`http://localhost:…/`)',
      pipeline: () => validateDestination(`http://localhost:${port}/`),
      check: expectHealthy,
      baselineName: 'dns.lookup + raw connect + undici GET',
      baseline: async () => {
        await lookup('localhost', { all: true });
        await rawConnect(port);
        await rawGet(origin);
      },
    },
    {
      name: 'dead port (refused)',
      pipeline: () => validateDestination(`http://127.0.0.1:${dead}/`),
      check: expectRefused(dead),
      baselineName: 'raw connect, refused',
      baseline: () =>
        rawConnect(dead).then(
          () => {
            throw new Error('the dead port accepted a connection');
          },
          () => {},
        ),
    },
  ];

  const results: Measured[] = [];
  for (const c of cases) results.push(await measure(c));
  server.close();

  const load = loadavg().map((l) => l.toFixed(2));
  console.log(
    `\nNode ${process.version}, ${RUNS} runs per case after ${WARMUP} warm-up, load average ${load.join(' / ')}\n`,
  );
  console.log('| case | p50 ms | p99 ms | max ms | baseline | baseline p50 | baseline p99 | ×p50 | ×p99 |');
  console.log('|---|---:|---:|---:|---|---:|---:|---:|---:|');
  for (const r of results) {
    const [p50, p99, b50, b99] = [
      percentile(r.pipeline, 50),
      percentile(r.pipeline, 99),
      percentile(r.baseline, 50),
      percentile(r.baseline, 99),
    ];
    console.log(
      `| ${r.name} | ${ms(p50)} | ${ms(p99)} | ${ms(Math.max(...r.pipeline))} | ${r.baselineName} | ${ms(b50)} | ${ms(b99)} | ` +
        `${(p50 / b50).toFixed(2)} | ${(p99 / b99).toFixed(2)} |`,
    );
  }

  console.log('\nPer step, p50 / p99 of the steps’ own durationMs:\n');
  console.log('| case | SYNTAX | DNS | TCP | HTTP |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of results) {
    const cell = (name: string) => {
      const values = r.steps.get(name);
      return values ? `${ms(percentile(values, 50))} / ${ms(percentile(values, 99))}` : '—';
    };
    console.log(`| ${r.name} | ${cell('SYNTAX')} | ${cell('DNS')} | ${cell('TCP')} | ${cell('HTTP')} |`);
  }

  const healthyP99 = Math.max(percentile(results[0]!.pipeline, 99), percentile(results[1]!.pipeline, 99));
  const deadP99 = percentile(results[2]!.pipeline, 99);
  console.log(
    `\nhealthy local destination: p99 ${ms(healthyP99)} ms (target < ${TARGET_MS} ms: ${healthyP99 < TARGET_MS ? 'met' : 'NOT met'}); ` +
      `dead port: p99 ${ms(deadP99)} ms against a 5000 ms TCP bound (${deadP99 < 1000 ? 'returns on the refusal' : 'SLOW'})`,
  );
  clearTimeout(watchdog);
}

await main();
