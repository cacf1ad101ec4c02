import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadMigrations } from '../src/db/migrate.js';
import { EnvError, envHelp, parseEnv } from '../src/env.js';
import { PROJECT_ROOT } from '../src/lib/paths.js';
import { generateToken } from '../src/modules/auth/tokens.js';
import { TEST_DATABASE_URL } from './helpers/db.js';
import { closedPort, startFakeNode } from './helpers/fake-node.js';

/**
 * The real CLI in a child process (`node --import tsx src/main.ts …`, no build step), each run on a
 * DATA_DIR of its own under a temporary root. PGlite's first init of a data directory costs
 * seconds, so `migrate` initialises one template directory and later tests work on copies.
 * The embedded tests run in PostgreSQL mode too (they test the embedded default).
 */

const TIMEOUT = 60_000;
const PROTOCOLS = resolve(PROJECT_ROOT, '../shared/PROTOCOLS.md');
const TOKEN = /\bsg_[A-Za-z0-9_-]{43}\b/g;
const IN_USE = /in use by another StreamGate process/;

let root: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'streamgate-cli-'));
  // Start the slow first init now, while the quick tests run.
  template().catch(() => {});
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([...children].map((child) => new Promise((done) => child.once('close', done))));
  await rm(root, { recursive: true, force: true });
});

interface Cli {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once the process has exited and its output is complete. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits for stdout (or stderr) to match; fails early, with the output, if the process exits. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
}

/** The process environment without any StreamGate variable, plus `env`. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', HOST: '127.0.0.1' };
  for (const { name } of envHelp())
    if (name !== 'NODE_ENV' && name !== 'LOG_LEVEL' && name !== 'HOST') delete clean[name];
  delete clean.TEST_DATABASE_URL;
  return { ...clean, ...env };
}

function spawnCli(args: string[], env: Record<string, string>): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: PROJECT_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  const waiters = new Set<() => void>();
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream]?.setEncoding('utf8').on('data', (chunk: string) => {
      out[stream] += chunk;
      for (const check of waiters) check();
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('close', (code, signal) => {
      children.delete(child);
      done({ code, signal });
    }),
  );
  return {
    child,
    get stdout() {
      return out.stdout;
    },
    get stderr() {
      return out.stderr;
    },
    exited,
    waitFor(pattern, stream = 'stdout') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = out[stream].match(pattern);
          if (match) {
            waiters.delete(check);
            resolve(match);
          }
        };
        waiters.add(check);
        check();
        exited.then(({ code, signal }) => {
          if (!waiters.delete(check)) return;
          reject(
            new Error(
              `streamgate ${args.join(' ')} exited (${code ?? signal}) before ${pattern}\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}`,
            ),
          );
        });
      });
    },
  };
}

/** Runs a command to completion. */
async function run(args: string[], env: Record<string, string>) {
  const cli = spawnCli(args, env);
  const { code, signal } = await cli.exited;
  return { code, signal, stdout: cli.stdout, stderr: cli.stderr };
}

/** The JSON log lines a process wrote to stdout. */
function logs(stdout: string): { msg?: string; [k: string]: unknown }[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

interface Server {
  cli: Cli;
  dir: string;
  url: string;
}

/** `streamgate serve` on `dir` and a free port; resolves once it logs that it is ready. */
async function serve(dir: string, env: Record<string, string> = {}): Promise<Server> {
  const cli = spawnCli(['serve'], { DATA_DIR: dir, PORT: String(await closedPort()), ...env });
  const [line] = await cli.waitFor(/^\{.*"msg":"StreamGate ready".*\}$/m);
  const { url } = JSON.parse(line) as { url: string };
  return { cli, dir, url };
}

/** `promise`, or a failure naming the step and showing the process's output after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string, cli: Cli): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: nothing after ${ms} ms\n--- stdout\n${cli.stdout}\n--- stderr\n${cli.stderr}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function stop(server: Server) {
  server.cli.child.kill('SIGTERM');
  return server.cli.exited;
}

async function gql(url: string, query: string, token: string | null, variables?: Record<string, unknown>) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: Record<string, unknown>; errors?: { extensions?: { code?: string } }[] };
  return { status: res.status, ...body };
}

const LIST_STREAMERS = '{ streamers(first: 5) { edges { node { id name } } } }';

let templateRun: Promise<{ dir: string; code: number | null; stdout: string; stderr: string }> | undefined;
/** `migrate` on a fresh DATA_DIR (a nested path that does not exist yet), once per file. */
function template() {
  templateRun ??= (async () => {
    const dir = join(root, 'template', 'data');
    return { dir, ...(await run(['migrate'], { DATA_DIR: dir })) };
  })();
  return templateRun;
}

let copies = 0;
/** A copy of the migrated template directory. */
async function migratedDir(): Promise<string> {
  const { dir, code, stderr } = await template();
  if (code !== 0) throw new Error(`template migrate failed (${code}):\n${stderr}`);
  const copy = join(root, `copy-${++copies}`);
  await cp(dir, copy, { recursive: true });
  return copy;
}

/** Reads an embedded data directory directly (no process may hold it). */
async function query<T>(dir: string, sql: string): Promise<T[]> {
  const db = await PGlite.create(dir);
  try {
    return (await db.query<T>(sql)).rows;
  } finally {
    await db.close();
  }
}

/** Every variable named in the environment table of PROTOCOLS.md. */
async function protocolVariables(): Promise<string[]> {
  const text = await readFile(PROTOCOLS, 'utf8').catch((error: Error) => {
    throw new Error(`the wire contract is expected at ${PROTOCOLS} (next to this checkout): ${error.message}`);
  });
  const section = text.split(/^## /m).find((s) => s.startsWith('Process and environment'));
  if (!section) throw new Error(`${PROTOCOLS}: no "## Process and environment" section`);
  const rows = section.split('\n').filter((line) => line.startsWith('|'));
  if (!/^\|\s*variable\s*\|/.test(rows[0] ?? '') || !/^\|[-|\s]+\|$/.test(rows[1] ?? '')) {
    throw new Error(`${PROTOCOLS}: the environment table no longer starts with | variable | … and a separator row`);
  }
  return rows
    .slice(2)
    .flatMap((row) => [...(row.split('|')[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!));
}

// Independent runs: concurrent, so the quick ones overlap the template's first init.
describe('streamgate CLI', { timeout: TIMEOUT, concurrent: true }, () => {
  it('--help lists every environment variable of PROTOCOLS.md and exits 0', async ({ expect }) => {
    const variables = await protocolVariables();
    // Guards the parser: the table names 19 variables (two of its rows name three each).
    expect(variables.length).toBeGreaterThanOrEqual(19);
    expect(variables).toEqual(expect.arrayContaining(['PORT', 'DATABASE_URL', 'NPM_PASSWORD', 'PROXMOX_TOKEN_SECRET']));

    const never = join(root, 'help-never-created');
    const { code, stdout, stderr } = await run(['--help'], { DATA_DIR: never });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: streamgate/);
    const listed = [...stdout.matchAll(/^ {2}([A-Z][A-Z0-9_]*) /gm)].map((m) => m[1]);
    const missing = variables.filter((v) => !listed.includes(v));
    expect(missing, 'variables in PROTOCOLS.md that --help does not list').toEqual([]);
    for (const command of ['serve', 'migrate', 'seed', 'token'])
      expect(stdout).toMatch(new RegExp(`^ {2}${command} `, 'm'));
    expect(existsSync(never)).toBe(false);
  });

  it('invalid configuration stops start-up with one message per bad variable', async ({ expect }) => {
    const never = join(root, 'invalid-never-created');
    // No command: the default, serve.
    const { code, stdout, stderr } = await run([], {
      DATA_DIR: never,
      PORT: 'abc',
      DATABASE_URL: 'mysql://x',
      LOG_LEVEL: 'loud',
      HOST: '127.0.0.1',
    });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stdout).toBe('');
    expect(stderr).toMatch(/invalid configuration/);
    const problems = [...stderr.matchAll(/^\s+- ([A-Z_]+): .+$/gm)].map((m) => m[1]);
    expect(problems.sort()).toEqual(['DATABASE_URL', 'LOG_LEVEL', 'PORT']);
    expect(existsSync(never)).toBe(false);
  });

  it('an unknown command exits 2 with the usage', async ({ expect }) => {
    const never = join(root, 'unknown-never-created');
    const { code, stdout, stderr } = await run(['frobnicate'], { DATA_DIR: never });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/unknown command "frobnicate"/);
    expect(stderr).toMatch(/Usage: streamgate/);
    expect(existsSync(never)).toBe(false);
  });

  it('migrate on a fresh DATA_DIR creates the database and records the migrations', async ({ expect }) => {
    const { dir, code, stdout, stderr } = await template();
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const migrations = await loadMigrations();
    expect(logs(stdout).find((l) => l.msg?.startsWith('applied'))?.applied).toEqual(migrations.map((m) => m.name));
    expect(existsSync(join(dir, 'PG_VERSION'))).toBe(true);
    expect(existsSync(join(dir, 'streamgate.lock')), 'lock released on exit').toBe(false);

    const rows = await query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      await migratedDir(),
      'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY migration_name',
    );
    expect(rows).toEqual(
      migrations.map((m) => ({
        migration_name: m.name,
        checksum: m.checksum,
        finished_at: expect.any(Date),
        rolled_back_at: null,
      })),
    );
  });

  it('seed adds the demo nodes and is idempotent', async ({ expect }) => {
    const dir = await migratedDir();
    const first = await run(['seed'], { DATA_DIR: dir });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const added = logs(first.stdout).find((l) => l.msg?.startsWith('seeded'))?.added;
    expect(added).toBeGreaterThan(0);

    const second = await run(['seed'], { DATA_DIR: dir });
    expect(second.code).toBe(0);
    expect(logs(second.stdout).find((l) => l.msg?.startsWith('seeded'))?.added).toBe(0);

    const nodes = await query<{ kind: string; name: string }>(dir, 'SELECT kind, name FROM "Node" ORDER BY kind, name');
    expect(nodes).toHaveLength(added as number);
    expect(new Set(nodes.map((n) => `${n.kind}/${n.name}`)).size).toBe(nodes.length);
    expect(new Set(nodes.map((n) => n.kind))).toEqual(new Set(['STREAMER', 'CACHE', 'SLB']));
  });

  it('token create | list | revoke: the secret on stdout once, only its hash stored, each change logged', async ({
    expect,
  }) => {
    const dir = await migratedDir();
    const bad = await run(['token', 'create', 'ci-bot'], { DATA_DIR: dir });
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining('needs a name and --role')]);

    const created = await run(['token', 'create', 'ci-bot', '--role', 'viewer'], { DATA_DIR: dir });
    expect(created.code).toBe(0);
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^sg_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/created viewer token "ci-bot"/);
    const refused = await run(['token', 'create', 'x', '--role', 'root'], { DATA_DIR: dir });
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining('BAD_USER_INPUT')]);

    const listed = await run(['token', 'list'], { DATA_DIR: dir });
    expect(listed.code).toBe(0);
    const row = listed.stdout.split('\n').find((line) => line.includes('\tci-bot\t'));
    expect(row?.split('\t')[2]).toBe('viewer');
    expect(listed.stdout).not.toContain(secret);
    const id = row?.split('\t')[0] ?? '';

    const revoked = await run(['token', 'revoke', id], { DATA_DIR: dir });
    expect([revoked.code, revoked.stdout]).toEqual([0, `revoked viewer token "ci-bot" (${id})\n`]);
    const again = await run(['token', 'revoke', id], { DATA_DIR: dir });
    expect(again.code).toBe(1);

    const stored = await query<{ type: string; actorName: string }>(
      dir,
      `SELECT type, "actorName" FROM "EventLog" WHERE type LIKE 'auth.token_%' ORDER BY seq`,
    );
    expect(stored).toEqual([
      { type: 'auth.token_created', actorName: 'streamgate CLI' },
      { type: 'auth.token_revoked', actorName: 'streamgate CLI' },
    ]);
    expect(await query(dir, 'SELECT 1 FROM "ApiToken"')).toEqual([]);
  });
});

describe('streamgate serve on the embedded database', { timeout: TIMEOUT }, () => {
  let running: (Server & { token: string }) | undefined;

  /** The server a previous test left running, or a new one on a copy of the template. */
  async function serving() {
    if (running && running.cli.child.exitCode === null) return running;
    const token = generateToken();
    running = { ...(await serve(await migratedDir(), { ADMIN_TOKEN: token })), token };
    return running;
  }

  it('without ADMIN_TOKEN prints a generated admin token on first start only, and it works', async () => {
    const dir = await migratedDir();
    const first = await serve(dir);
    const [token] = await first.cli.waitFor(TOKEN, 'stderr');
    expect(first.cli.stderr.match(TOKEN)).toEqual([token]);
    expect(first.cli.stderr).toMatch(/generated an admin token/);
    expect(first.cli.stdout, 'the token never reaches the logs').not.toContain(token);

    const ok = await gql(first.url, LIST_STREAMERS, token);
    expect(ok.errors).toBeUndefined();
    expect(ok).toMatchObject({ status: 200, data: { streamers: { edges: [] } } });
    // The generation is in the audit log, naming the token but never containing it.
    const audit = await gql(first.url, '{ events(source: "auth") { edges { node { type details } } } }', token);
    expect(audit.data).toEqual({
      events: {
        edges: [
          { node: { type: 'auth.token_generated', details: { tokenId: expect.any(String), name: 'bootstrap-admin' } } },
        ],
      },
    });
    expect(JSON.stringify(audit)).not.toContain(token);
    const anonymous = await gql(first.url, LIST_STREAMERS, null);
    expect(anonymous.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    expect(await stop(first)).toEqual({ code: 0, signal: null });

    const second = await serve(dir);
    // The stored token still works; nothing new was minted or printed.
    const again = await gql(second.url, LIST_STREAMERS, token);
    expect(again).toMatchObject({ status: 200, data: { streamers: { edges: [] } } });
    expect(second.cli.stderr).not.toMatch(TOKEN);
    expect(second.cli.stderr).not.toMatch(/admin token/);
    const tokens = await gql(second.url, LIST_STREAMERS, 'sg_not-a-real-token');
    expect(tokens.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    running = { ...second, token };
  });

  it('a second process on the same DATA_DIR exits non-zero with a clear message; the first keeps serving', async () => {
    const first = await serving();
    const second = spawnCli(['serve'], { DATA_DIR: first.dir, PORT: String(await closedPort()) });
    const { code } = await within(second.exited, 30_000, 'the second process giving up', second);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(second.stderr).toMatch(IN_USE);
    expect(second.stderr).toContain(first.dir);
    expect(logs(second.stdout).find((l) => l.msg === 'StreamGate ready')).toBeUndefined();

    expect(first.cli.child.exitCode).toBeNull();
    expect((await fetch(`${first.url}/ready`)).status).toBe(200);
    expect(await gql(first.url, LIST_STREAMERS, first.token)).toMatchObject({ status: 200 });
  });

  it('serves the data plane on PROXY_PORT, and names PROXY_PORT when that port is taken', async () => {
    const proxyPort = await closedPort();
    const server = await serve(await migratedDir(), { PROXY_PORT: String(proxyPort), HOST: '127.0.0.1' });
    try {
      const ready = logs(server.cli.stdout).find((l) => l.msg === 'StreamGate ready');
      expect(ready?.dataPlane).toBe(`http://127.0.0.1:${proxyPort}`);
      const res = await fetch(`http://127.0.0.1:${proxyPort}/`);
      expect(res.status).toBe(404); // no route for 127.0.0.1: the data plane answered
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ROUTE_NOT_FOUND');

      // A second instance on another DATA_DIR and API port, but the same PROXY_PORT.
      const second = spawnCli(['serve'], {
        DATA_DIR: await migratedDir(),
        PORT: String(await closedPort()),
        HOST: '127.0.0.1',
        PROXY_PORT: String(proxyPort),
      });
      const { code } = await within(second.exited, 30_000, 'the second process giving up', second);
      expect(code).toBe(1);
      expect(second.stderr).toContain(`port ${proxyPort} on 127.0.0.1 is already in use; set PROXY_PORT to a free one`);
    } finally {
      await stop(server);
    }
  });

  it('stops at once, exit 1, when its data-directory lock is taken away', async () => {
    const server = await serving();
    await rm(join(server.dir, 'streamgate.lock'), { recursive: true });
    // The lock is refreshed every 5 s; the refresh finds it gone.
    const { code } = await within(server.cli.exited, 15_000, 'the process noticing its lost lock', server.cli);
    expect(code).toBe(1);
    expect(logs(server.cli.stdout).find((l) => l.level === 60)?.msg).toMatch(/lost the lock on .*; stopping now/);
  });

  it('after kill -9, the next start waits for the stale lock (saying so once), and its ACTIVE session is WAITING again', async () => {
    const token = generateToken();
    const killed = await serve(await migratedDir(), { ADMIN_TOKEN: token });
    const clientId = randomUUID();
    const created = await gql(
      killed.url,
      `mutation { createSession(clientId: "${clientId}") { session { id } streamKey } }`,
      token,
    );
    const { session, streamKey } = (created.data as { createSession: { session: { id: string }; streamKey: string } })
      .createSession;
    const publisher = new WebSocket(
      `${killed.url.replace('http', 'ws')}/ws/stream/${session.id}/${clientId}?key=${encodeURIComponent(streamKey)}`,
    );
    publisher.on('error', () => {});
    await new Promise((resolve) => publisher.once('open', resolve));
    const status = async (url: string) =>
      ((await gql(url, `{ session(id: "${session.id}") { status } }`, token)).data as { session: { status: string } })
        .session.status;
    await within(
      (async () => {
        while ((await status(killed.url)) !== 'ACTIVE') await new Promise((r) => setTimeout(r, 50));
      })(),
      10_000,
      'the session becoming ACTIVE',
      killed.cli,
    );
    killed.cli.child.kill('SIGKILL');
    await killed.cli.exited;
    publisher.terminate();

    const next = await within(
      serve(killed.dir, { ADMIN_TOKEN: token }),
      40_000,
      'the restart after kill -9',
      killed.cli,
    );
    const waits = logs(next.cli.stdout).filter((l) => /waiting for its lock to clear/.test(String(l.msg)));
    expect(waits).toHaveLength(1);
    expect(waits[0]?.level).toBe(40);
    expect(next.cli.stderr).not.toMatch(IN_USE);
    expect(await status(next.url)).toBe('WAITING');
    expect(await stop(next)).toEqual({ code: 0, signal: null });
  });

  it('SIGTERM lets an in-flight request finish, exits 0 and releases the data directory', async () => {
    const server = await serving();
    const node = await startFakeNode();
    let slowArrived: () => void = () => {};
    const arrived = new Promise<void>((resolve) => {
      slowArrived = resolve;
    });
    node.override = (req, res) => {
      if (!req.url?.startsWith('/slow')) return false;
      slowArrived();
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('finally'), 1_000);
      return true;
    };
    const created = await gql(
      server.url,
      'mutation ($input: CreateNodeInput!) { createCacheNode(input: $input) { id } }',
      server.token,
      { input: { name: `slow-${randomBytes(3).toString('hex')}`, host: node.host, apiPort: node.port } },
    );
    expect(created.errors).toBeUndefined();
    const { id } = (created.data as { createCacheNode: { id: string } }).createCacheNode;

    const started = performance.now();
    const inFlight = fetch(`${server.url}/proxy/caches/${id}/slow?x=1`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    await within(arrived, 10_000, 'the slow request reaching the node', server.cli);
    server.cli.child.kill('SIGTERM');
    const res = await within(inFlight, 10_000, 'the in-flight response', server.cli);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('finally');
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);

    expect(await within(server.cli.exited, 15_000, 'exit after SIGTERM', server.cli)).toEqual({
      code: 0,
      signal: null,
    });
    const log = logs(server.cli.stdout);
    expect(log.map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
    expect(server.cli.stderr).toBe('');
    expect(existsSync(join(server.dir, 'streamgate.lock')), 'lock released').toBe(false);

    // A new process can take the directory at once, and what the first one wrote is there.
    const next = await serve(server.dir, { ADMIN_TOKEN: server.token });
    const read = await gql(next.url, 'query ($id: ID!) { cacheNode(id: $id) { id port: apiPort } }', server.token, {
      id,
    });
    expect(read.data).toEqual({ cacheNode: { id, port: node.port } });
    expect(await stop(next)).toEqual({ code: 0, signal: null });
  });
});

// The PostgreSQL pass of the suite (TEST_DATABASE_URL) adds this; the embedded pass has no server.
const onPostgres = TEST_DATABASE_URL ? describe : () => {};
onPostgres('streamgate migrate on PostgreSQL', { timeout: TIMEOUT }, () => {
  it('migrates a fresh schema and records the migrations; the second run applies nothing', async () => {
    const schema = `cli_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA "${schema}"`);
      const url = new URL(TEST_DATABASE_URL!);
      url.searchParams.set('schema', schema);
      const never = join(root, 'pg-never-created');
      const env = { DATABASE_URL: url.toString(), DATA_DIR: never };

      const first = await run(['migrate'], env);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const migrations = await loadMigrations();
      expect(logs(first.stdout).find((l) => l.msg?.startsWith('applied'))?.applied).toEqual(
        migrations.map((m) => m.name),
      );
      const { rows } = await admin.query(
        `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished
         FROM "${schema}"."_prisma_migrations" ORDER BY migration_name`,
      );
      expect(rows).toEqual(migrations.map((m) => ({ migration_name: m.name, checksum: m.checksum, finished: true })));
      const tables = await admin.query(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema],
      );
      expect(tables.rows.map((r) => r.table_name)).toEqual([
        'ApiToken',
        'EventLog',
        'Node',
        'Proxy',
        'Session',
        'SessionOperator',
        'Settings',
        '_prisma_migrations',
      ]);

      const second = await run(['migrate'], env);
      expect(second.code).toBe(0);
      expect(logs(second.stdout).find((l) => l.msg?.startsWith('applied'))).toBeUndefined();
      expect(existsSync(never), 'PostgreSQL mode leaves DATA_DIR alone').toBe(false);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    }
  });
});

describe('REDIS_URL', () => {
  it('is refused with the embedded database (single-process), accepted with DATABASE_URL', () => {
    expect(() => parseEnv({ REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(EnvError);
    expect(() => parseEnv({ REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(/DATABASE_URL.*single-process/);
    const env = parseEnv({ REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgres://127.0.0.1/x' });
    expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
  });
});
