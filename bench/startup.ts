/**
 * Start-up readiness: time from spawning the server to its first `200` from `/ready`, on the
 * embedded database. Cases: the first start on an empty DATA_DIR (cluster init + migrations),
 * then N starts on that now-initialised directory with the built server (`node dist/src/main.js
 * serve`, what `npm start` runs), and a few through `npm start` itself (npm and the stale-build
 * check on top). Prints a markdown table.
 *
 *   npx tsx bench/startup.ts [--runs 5] [--npm-runs 3]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../src/lib/paths.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, 'npm-runs': { type: 'string', default: '3' } },
});
const RUNS = Number(values.runs);
const NPM_RUNS = Number(values['npm-runs']);
const POLL_MS = 5;
const GIVE_UP_MS = 120_000;

interface Sample {
  /** Spawn to the first 200 from /ready, measured from outside. */
  readyMs: number;
  /** The server's own `startupMs` (process time origin to listening), from its log. */
  reportedMs: number | undefined;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function readyOnce(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

async function startOnce(dataDir: string, via: 'node' | 'npm'): Promise<Sample> {
  const port = await freePort();
  const env = {
    ...process.env,
    DATA_DIR: dataDir,
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    DATABASE_URL: '',
    ADMIN_TOKEN: '',
  };
  const [command, args] =
    via === 'node'
      ? [process.execPath, ['dist/src/main.js', 'serve']]
      : ['npm', ['start', '--silent', '--no-update-notifier']];
  const started = performance.now();
  // Its own process group, so that stopping `npm start` also stops the server under it.
  const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  try {
    const url = `http://127.0.0.1:${port}/ready`;
    for (;;) {
      if (await readyOnce(url)) break;
      if (gone) throw new Error(`server exited before it was ready\n${stdout}\n${stderr}`);
      if (performance.now() - started > GIVE_UP_MS) throw new Error(`not ready after ${GIVE_UP_MS} ms\n${stdout}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const readyMs = performance.now() - started;
    // /ready can answer before the process has written its own "ready" log line.
    const logged = () => stdout.split('\n').find((l) => l.includes('"StreamGate ready"'));
    for (let waited = 0; !logged() && waited < 2_000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const line = logged();
    const reportedMs = line ? (JSON.parse(line) as { startupMs?: number }).startupMs : undefined;
    return { readyMs, reportedMs };
  } finally {
    await stop(child, exited);
  }
}

async function stop(child: ChildProcess, exited: Promise<number | null>) {
  try {
    process.kill(-(child.pid as number), 'SIGTERM');
  } catch {
    // already gone
  }
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
  if (code === 'timeout') {
    process.kill(-(child.pid as number), 'SIGKILL');
    await exited;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const ms = (x: number | undefined) => (x === undefined ? '–' : `${Math.round(x)}`);

function row(name: string, samples: Sample[]) {
  const ready = samples.map((s) => s.readyMs);
  const reported = samples.map((s) => s.reportedMs).filter((x): x is number => x !== undefined);
  return `| ${name} | ${samples.length} | ${ms(median(ready))} | ${ms(Math.max(...ready))} | ${ms(Math.min(...ready))} | ${
    reported.length ? ms(median(reported)) : '–'
  } |`;
}

async function main() {
  // Build first (as `npm start` does when the sources are newer than dist/), outside the timings.
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');

  const root = await mkdtemp(join(tmpdir(), 'streamgate-startup-'));
  const dataDir = join(root, 'data');
  try {
    process.stderr.write('first start on an empty DATA_DIR…\n');
    const first = await startOnce(dataDir, 'node');
    const warm: Sample[] = [];
    for (let i = 0; i < RUNS; i++) {
      process.stderr.write(`start ${i + 1}/${RUNS} on the initialised DATA_DIR…\n`);
      warm.push(await startOnce(dataDir, 'node'));
    }
    const viaNpm: Sample[] = [];
    for (let i = 0; i < NPM_RUNS; i++) {
      process.stderr.write(`npm start ${i + 1}/${NPM_RUNS}…\n`);
      viaNpm.push(await startOnce(dataDir, 'npm'));
    }

    const [l1, l5] = loadavg();
    console.log(
      `Start-up to first 200 from /ready (embedded database; Node ${process.version}, ${cpus().length} CPUs, ` +
        `load average ${l1?.toFixed(2)} / ${l5?.toFixed(2)} at the end)\n`,
    );
    console.log('| case | runs | median ms | max ms | min ms | server-reported startupMs (median) |');
    console.log('|---|---:|---:|---:|---:|---:|');
    console.log(row('first start, empty DATA_DIR (`node dist/src/main.js serve`)', [first]));
    console.log(row('initialised DATA_DIR (`node dist/src/main.js serve`)', warm));
    if (viaNpm.length) console.log(row('initialised DATA_DIR (`npm start`)', viaNpm));
    console.log(
      `\nready = spawn to the first 200 from /ready, polled every ${POLL_MS} ms; startupMs = the server's own ` +
        'log field (process time origin to listening), so ready − startupMs ≈ process spawn + the first probe.',
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
