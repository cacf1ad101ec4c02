import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { envHelp } from '../../src/env.js';
import { generateToken } from '../../src/modules/auth/tokens.js';
import { closedPort } from './fake-node.js';
import { dispose } from './leftovers.js';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const READY = /^\{.*"msg":"StreamGate ready".*\}$/m;

/** A real `streamgate serve` process (what several instances of a deployment are). */
export interface Instance {
  url: string;
  token: string;
  child: ChildProcess;
  /** Everything it has logged so far. */
  readonly output: string;
  exited: Promise<number | null>;
}

/** A fresh schema on TEST_DATABASE_URL for processes to share; dropped after the file. */
export async function createSharedSchema(baseUrl: string): Promise<string> {
  const schema = `cluster_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.end();
  dispose(schema, async () => {
    const cleanup = new pg.Client({ connectionString: baseUrl });
    await cleanup.connect();
    await cleanup.query(`DROP SCHEMA "${schema}" CASCADE`);
    await cleanup.end();
  });
  const url = new URL(baseUrl);
  url.searchParams.set('schema', schema);
  return url.toString();
}

/**
 * Starts `streamgate serve` (tsx) on a free port with `env` on top of a clean environment;
 * resolves once it logs that it is ready. Killed after the test file.
 */
export async function startInstance(env: Record<string, string>): Promise<Instance> {
  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const { name } of envHelp()) delete clean[name];
  delete clean.TEST_DATABASE_URL;
  delete clean.TEST_REDIS_URL;
  const token = env.ADMIN_TOKEN ?? generateToken();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: PROJECT_ROOT,
    env: {
      ...clean,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      PORT: String(await closedPort()),
      HEALTH_MONITOR: 'off',
      ADMIN_TOKEN: token,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  dispose(child, async (c) => {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await exited;
  });
  const ready = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = output.match(READY);
      if (match) resolve(match[0]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => reject(new Error(`streamgate exited (${code}) before it was ready:\n${output}`)));
  });
  const { url } = JSON.parse(await ready) as { url: string };
  return {
    url,
    token,
    child,
    get output() {
      return output;
    },
    exited,
  };
}

/** POSTs a GraphQL operation to an instance with its admin token (or `token`). */
export async function gqlAt<T = Record<string, unknown>>(
  instance: Pick<Instance, 'url' | 'token'>,
  query: string,
  opts: { token?: string } = {},
): Promise<{ data?: T; errors?: { message: string; extensions?: { code?: string } }[] }> {
  const res = await fetch(`${instance.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.token ?? instance.token}` },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
}
