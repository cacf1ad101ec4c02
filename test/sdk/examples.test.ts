import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/lib/paths.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { eventually } from '../helpers/eventually.js';
import { closedPort } from '../helpers/fake-node.js';
import { sdkClient } from '../helpers/sdk.js';

/**
 * Each example in examples/ run as a user would (`npx tsx examples/<name>.ts`, STREAMGATE_URL and
 * STREAMGATE_TOKEN) against a real app: it must end by itself, exit 0, and print what it is for.
 */

const EXAMPLE_TIMEOUT_MS = 30_000;
let t: TestApp;
let dir: string;

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function runExample(name: string, args: string[] = [], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', join('examples', `${name}.ts`), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, STREAMGATE_URL: t.url, STREAMGATE_TOKEN: t.token, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), EXAMPLE_TIMEOUT_MS);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve(code);
    }),
  );
  return { child, output: () => output, exited };
}

async function finished(run: Run): Promise<string> {
  const code = await run.exited;
  expect(code, run.output()).toBe(0);
  return run.output();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamgate-examples-'));
  const routesFile = join(dir, 'routes.yaml');
  await writeFile(routesFile, 'routes:\n  - alias: grafana\n    upstream: http://127.0.0.1:3000\n');
  t = await startTestApp({ env: { ROUTES_FILE: routesFile } });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('examples/', { timeout: EXAMPLE_TIMEOUT_MS + 10_000 }, () => {
  it('nodes.ts registers nodes, pings them and removes them', async () => {
    const port = await closedPort();
    const output = await finished(runExample('nodes', [], { NODE_API_PORT: String(port) }));
    expect(output).toMatch(/Streamer example-streamer-\S+ \(127\.0\.0\.1:\d+\) is UNHEALTHY: connection refused/);
    expect(output).toMatch(/CacheNode example-cache-\S+ .* is UNHEALTHY/);
    expect(output).toContain('removed the example nodes');
    expect((await t.app.services.nodes.list('STREAMER', {})).edges).toEqual([]);
  });

  it('health.ts prints the transitions it sees while it follows healthChanged', async () => {
    const run = runExample('health', [], { STREAMGATE_EXAMPLE_SECONDS: '5' });
    await eventually(() => expect(run.output()).toContain('following health changes'), 20_000);
    await eventually(() => expect(t.app.services.health.stats().subscribers).toBe(1), 20_000);
    // A node that cannot answer: its ping is a transition UNKNOWN → UNHEALTHY.
    const sg = sdkClient(t);
    const { createSlbNode } = await sg.createSlbNode({
      input: { name: 'example-slb', host: '127.0.0.1', apiPort: await closedPort() },
    });
    await sg.ping({ id: createSlbNode.id });
    const output = await finished(run);
    expect(output).toMatch(/NODE example-slb: UNKNOWN → UNHEALTHY/);
    expect(output).toContain('done');
  });

  it('session.ts publishes frames and watches them as an operator', async () => {
    const output = await finished(runExample('session'));
    expect(output).toContain('operator got text "hello"');
    expect(output).toContain('operator got 4 binary bytes');
    expect(output).toMatch(/session FINISHED: 3 frames relayed; publisher closed 4410/);
  });

  it('validate-proxy.ts prints each step as it arrives, with hints', async () => {
    const output = await finished(runExample('validate-proxy'));
    expect(output).toMatch(/ok {3}SYNTAX/);
    expect(output).toMatch(/FAIL DNS .*streamgate-example\.invalid/);
    expect(output).toContain('hint:');
    expect(output).toContain('the destination is not usable');
  });

  it('routes.ts lists routes by provider', async () => {
    const output = await finished(runExample('routes'));
    expect(output).toContain('file: 1 route(s)');
    expect(output).toMatch(/HTTP +grafana \(grafana\.\*\) → http:\/\/127\.0\.0\.1:3000\//);
  });
});
