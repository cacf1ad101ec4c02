import { type ChildProcess, fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Pool, request } from 'undici';
import { stopChild } from './children.js';

/**
 * The harness of the HTTP proxy benchmarks (passthrough.ts, data-plane.ts): forked roles, a
 * closed-loop load generator in its own process, the server's CPU time per request, and a large
 * upload while the proxy's RSS is sampled. Every figure is compared with the other targets of the
 * same run.
 */

/** The knobs every proxy benchmark reads from the environment (see each script's header). */
export const KNOBS = {
  seconds: Number(process.env.BENCH_SECONDS ?? 8),
  warmupSeconds: Number(process.env.BENCH_WARMUP_SECONDS ?? 2),
  connections: Number(process.env.BENCH_CONNECTIONS ?? 32),
  rounds: Number(process.env.BENCH_ROUNDS ?? 2),
  uploadMb: Number(process.env.BENCH_UPLOAD_MB ?? 100),
};

export interface Ready {
  url: string;
}

export interface LoadJob {
  origin: string;
  path: string;
  headers: Record<string, string>;
  /** GET without a body unless given (GraphQL benchmarks POST a JSON document). */
  method?: 'GET' | 'POST';
  body?: string;
  connections: number;
  warmupMs: number;
  durationMs: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  non2xx: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

/** Closed loop: `connections` workers, each sending the next request when the answer is read. */
export async function runLoad(job: LoadJob): Promise<LoadResult> {
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
        const { statusCode, body } = await pool.request({
          path: job.path,
          method: job.method ?? 'GET',
          headers: job.headers,
          body: job.body ?? null,
        });
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
  return {
    requests: latencies.length,
    errors,
    non2xx,
    seconds,
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

/** The p-th percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * The body of a forked role: it exits when the orchestrator goes, reports its CPU time on
 * request, and sends what `start` returns once it is ready. The `load` role runs jobs instead.
 */
export async function runRole(role: string, start: () => Promise<Ready>): Promise<void> {
  process.on('disconnect', () => process.exit(0));
  if (role === 'load') {
    process.on('message', async (job: LoadJob) => process.send?.(await runLoad(job)));
    process.send?.({ url: '' } satisfies Ready);
    return;
  }
  process.on('message', (message) => {
    if (message === 'cpu') process.send?.({ cpu: process.cpuUsage() });
  });
  process.send?.(await start());
}

/** The orchestrator's side: forks roles of one script, runs load jobs, reads CPU, stops them all. */
export class Roles {
  private readonly children: ChildProcess[] = [];

  constructor(
    private readonly script: string,
    /** A directory to write V8 CPU profiles of the servers into (`--cpu-prof`). */
    private readonly profileDir?: string,
  ) {}

  /** `quiet`: the role's stdout goes to /dev/null (a role that logs every request). */
  spawn(
    role: string,
    args: string[] = [],
    opts: { quiet?: boolean } = {},
  ): Promise<{ proc: ChildProcess; url: string }> {
    const profile = this.profileDir && role !== 'load' ? ['--cpu-prof', `--cpu-prof-dir=${this.profileDir}`] : [];
    const proc = fork(this.script, [role, ...args], {
      execArgv: [...process.execArgv, ...profile], // tsx's loader
      env: { ...process.env, NODE_ENV: 'production' },
      stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', 'inherit', 'ipc'],
    });
    this.children.push(proc);
    return new Promise((resolve, reject) => {
      proc.once('message', (ready: Ready) => resolve({ proc, url: ready.url }));
      proc.once('exit', (code) => reject(new Error(`${role} exited (${code}) before it was ready`)));
    });
  }

  /**
   * The script's entry point: a forked child (role in argv) runs that role; the orchestrator runs
   * `main`, and if it fails every child is stopped before the error is thrown on.
   */
  async entry(main: () => Promise<void>, start: (role: string, args: string[]) => Promise<Ready>): Promise<void> {
    const [role, ...args] = process.argv.slice(2);
    if (role) return runRole(role, () => start(role, args));
    try {
      await main();
    } catch (error) {
      await this.stopAll();
      throw error;
    }
  }

  /** Cuts the whole run (children killed, exit 1) if it takes longer than `ms`. */
  watchdog(ms: number): NodeJS.Timeout {
    return setTimeout(() => {
      console.error(`bench: still running after ${ms / 1000} s, giving up`);
      for (const proc of this.children) proc.kill();
      process.exit(1);
    }, ms);
  }

  /** Children exit on disconnect (which writes their CPU profiles); a stuck one is killed. */
  async stopAll(): Promise<void> {
    await Promise.all(this.children.map(stopChild));
  }
}

export function runJob(load: ChildProcess, job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve) => {
    load.once('message', (result: LoadResult) => resolve(result));
    load.send(job);
  });
}

/** CPU time (user + system, µs) a server child has used so far. */
export function cpuOf(proc: ChildProcess): Promise<number> {
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

export interface Target {
  name: string;
  url: string;
  path: string;
  /** The process whose CPU time is charged to the target: the proxy, or for direct the upstream. */
  proc: ChildProcess;
  headers: Record<string, string>;
  method?: 'GET' | 'POST';
  body?: string;
}

/** Before measuring: every target answers 200 with the upstream's document, or the run stops. */
export async function assertAnswers(targets: readonly Target[]): Promise<void> {
  for (const t of targets) {
    const res = await request(`${t.url}${t.path}`, { headers: t.headers });
    const text = await res.body.text();
    if (res.statusCode !== 200 || !text.includes('bench-upstream')) {
      throw new Error(`${t.name} answered ${res.statusCode}: ${text.slice(0, 200)}`);
    }
  }
}

/** The upload through each proxy in turn (before the load, while the heaps are still small). */
export async function uploadThrough(
  proxies: Record<string, { url: string; proc: ChildProcess }>,
  path: string,
  headers: Record<string, string>,
): Promise<Record<string, UploadResult>> {
  const uploads: Record<string, UploadResult> = {};
  for (const [name, proxy] of Object.entries(proxies)) {
    uploads[name] = await upload(proxy.url, path, proxy.proc.pid as number, KNOBS.uploadMb, headers);
  }
  return uploads;
}

export interface TargetSummary {
  rps: number;
  p50: number;
  p99: number;
  cpu: number;
  errors: number;
  /** req/s of each round, in order. */
  rounds: number[];
}

/**
 * Every target gets the same load for the same time after a warm-up, in `rounds` rounds with
 * the order rotated; prints each run and a table, and returns the means per target.
 */
export async function compareThroughput(
  load: ChildProcess,
  targets: readonly Target[],
  opts: { connections: number; warmupSeconds: number; seconds: number; rounds: number } = KNOBS,
): Promise<Record<string, TargetSummary>> {
  const results: Record<string, (LoadResult & { cpuPerRequest: number })[]> = {};
  for (const t of targets) results[t.name] = [];
  for (let round = 0; round < opts.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length] as Target);
    for (const t of order) {
      const cpuBefore = await cpuOf(t.proc);
      const run = await runJob(load, {
        origin: t.url,
        path: t.path,
        headers: t.headers,
        ...(t.method ? { method: t.method } : {}),
        ...(t.body !== undefined ? { body: t.body } : {}),
        connections: opts.connections,
        warmupMs: opts.warmupSeconds * 1000,
        durationMs: opts.seconds * 1000,
      });
      // Includes the warm-up's requests, which the load result does not count: scale by time.
      const cpu = (await cpuOf(t.proc)) - cpuBefore;
      const allRequests = run.requests * ((opts.warmupSeconds + run.seconds) / run.seconds);
      const result = { ...run, cpuPerRequest: cpu / allRequests };
      results[t.name]?.push(result);
      console.log(
        `  round ${round + 1} ${t.name.padEnd(10)} ${result.rps.toFixed(0).padStart(6)} req/s  ` +
          `p50 ${ms(result.p50)} ms  p99 ${ms(result.p99)} ms  CPU ${result.cpuPerRequest.toFixed(0)} µs/req  ` +
          `errors ${result.errors}  non-2xx ${result.non2xx}`,
      );
    }
  }
  const summary: Record<string, TargetSummary> = {};
  for (const [name, runs] of Object.entries(results)) {
    summary[name] = {
      rps: mean(runs.map((r) => r.rps)),
      p50: mean(runs.map((r) => r.p50)),
      p99: mean(runs.map((r) => r.p99)),
      cpu: mean(runs.map((r) => r.cpuPerRequest)),
      errors: runs.reduce((a, r) => a + r.errors + r.non2xx, 0),
      rounds: runs.map((r) => r.rps),
    };
  }
  const baseline = summary[targets[0]?.name ?? ''] as TargetSummary;
  console.log(
    `\n| target | req/s | p50 (ms) | p99 (ms) | server CPU (µs/req) | errors | req/s vs ${targets[0]?.name} |`,
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const t of targets) {
    const s = summary[t.name] as TargetSummary;
    console.log(
      `| ${t.name} | ${s.rps.toFixed(0)} | ${ms(s.p50)} | ${ms(s.p99)} | ${s.cpu.toFixed(0)} | ${s.errors} | ` +
        `${(s.rps / baseline.rps).toFixed(2)} |`,
    );
  }
  return summary;
}

/** `ours ÷ theirs` on every figure, one line. */
export function printRatio(label: string, ours: TargetSummary, theirs: TargetSummary): void {
  const perRound = ours.rounds.map((rps, i) => (rps / (theirs.rounds[i] ?? Number.NaN)).toFixed(2)).join(', ');
  console.log(
    `\n${label}: req/s ×${(ours.rps / theirs.rps).toFixed(2)} (per round: ${perRound}), ` +
      `p50 ×${(ours.p50 / theirs.p50).toFixed(2)}, p99 ×${(ours.p99 / theirs.p99).toFixed(2)}, ` +
      `CPU per request ×${(ours.cpu / theirs.cpu).toFixed(2)} (lower is better for latency and CPU)`,
  );
}

/** Resident set size of a process in bytes, from /proc (Linux); `VmHWM` is the kernel's peak. */
export function procMemory(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Resets a process's VmHWM to its current RSS (Linux ≥ 4.0, own processes); false if refused. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface UploadResult {
  mbPerSecond: number;
  rssBefore: number;
  rssPeak: number;
  hashOk: boolean;
}

/**
 * Streams `megabytes` MiB through `url` + `path` to an upstream that answers `{ bytes, sha256 }`
 * of what it received, while sampling the proxy process's RSS every 5 ms (and the kernel's peak).
 */
export async function upload(
  url: string,
  path: string,
  pid: number,
  megabytes: number,
  headers: Record<string, string>,
): Promise<UploadResult> {
  const chunk = randomBytes(64 * 1024);
  const chunks = Math.round((megabytes * 1024 * 1024) / chunk.length);
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
    headers: {
      ...headers,
      'content-type': 'application/octet-stream',
      'content-length': String(chunks * chunk.length),
    },
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

export function printUploads(megabytes: number, uploads: Record<string, UploadResult>): void {
  console.log(`\n| ${megabytes} MiB upload via proxy | MB/s | RSS before | peak RSS | peak − before | sha256 ok |`);
  console.log('|---|---:|---:|---:|---:|---|');
  for (const [name, u] of Object.entries(uploads)) {
    console.log(
      `| ${name} | ${u.mbPerSecond.toFixed(0)} | ${mb(u.rssBefore)} | ${mb(u.rssPeak)} | ${mb(u.rssPeak - u.rssBefore)} | ${u.hashOk ? 'yes' : 'NO'} |`,
    );
  }
}

export const mb = (bytes: number) => (Number.isNaN(bytes) ? 'n/a' : `${(bytes / 1024 / 1024).toFixed(1)} MB`);
export const ms = (value: number) => value.toFixed(2);
export const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
