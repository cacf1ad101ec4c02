import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import type { Database } from '../src/db/client.js';
import { parseEnv } from '../src/env.js';
import { createLogger } from '../src/lib/logger.js';
import { defineModule } from '../src/modules/module.js';
import { type AppDeps, buildModules } from '../src/wiring.js';
import { startTestApp } from './helpers/app.js';
import { createTestDatabase } from './helpers/db.js';
import { eventually } from './helpers/eventually.js';
import { startFakeNode } from './helpers/fake-node.js';
import { startFakeNpm } from './helpers/fake-npm.js';
import { sdkClient } from './helpers/sdk.js';
import { startUpstream } from './proxies/helpers.js';

/**
 * A database whose close() first records what the event log and the node rows hold at that
 * moment: whatever the app writes after it would be lost in production. The real database is
 * closed after the test file.
 */
async function watchedDatabase() {
  const db = await createTestDatabase();
  const atClose = { events: [] as string[], pinged: [] as string[] };
  const watched: Database = {
    prisma: db.prisma,
    writes: db.writes,
    engine: db.engine,
    location: db.location,
    migrate: () => db.migrate(),
    isReady: (ms) => db.isReady(ms),
    async close() {
      atClose.events = (await db.prisma.eventLog.findMany({ orderBy: { seq: 'asc' } })).map((e) => e.type);
      atClose.pinged = (await db.prisma.node.findMany({ where: { lastPingedAt: { not: null } } })).map((n) => n.name);
    },
  };
  return { watched, atClose };
}

describe('stopping the app', () => {
  it('lets an Nginx Proxy Manager call under way finish while the event log is open, its client gone', async () => {
    const npm = await startFakeNpm();
    const upstream = await startUpstream();
    const { watched, atClose } = await watchedDatabase();
    const t = await startTestApp({
      db: watched,
      env: { NPM_URL: npm.url, NPM_EMAIL: npm.email, NPM_PASSWORD: npm.password },
    });
    npm.delayNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 400);
    // The client goes away while NPM is creating the host: the server has no request left to wait
    // for, so only the proxies module's stop keeps the call (and what follows it) alive.
    const client = new AbortController();
    const creating = t.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `mutation { createProxy(input: { domain: "late.example.com", destination: "${upstream.url}" }) { proxy { id } } }`,
      }),
      signal: client.signal,
    });
    await eventually(() =>
      expect(npm.requests.some((r) => r.method === 'POST' && r.path === '/api/nginx/proxy-hosts')).toBe(true),
    );
    client.abort();
    await creating.catch(() => {});
    await t.app.stop();
    expect([...npm.hosts.values()].map((h) => h.domain_names)).toEqual([['late.example.com']]);
    expect(atClose.events).toContain('proxy.created');
  });

  it("stores the monitor's last results and the event log's last entries before the database closes", async () => {
    const node = await startFakeNode();
    const { watched, atClose } = await watchedDatabase();
    const t = await startTestApp({ db: watched, env: { HEALTH_MONITOR: 'on' } });
    const sg = sdkClient(t);
    await sg.updateSettings({ input: { healthCheckIntervalSeconds: 1 } });
    await sg.createCacheNode({ input: { name: 'last', host: '127.0.0.1', apiPort: node.port } });
    // Stop the moment the first scheduled check has its result: the result is still waiting for
    // its batch (written every second) and the WARN entry for the bus's next write.
    let stopping: Promise<void> | undefined;
    const channel = diagnostics.channel('streamgate:health:check');
    const onCheck = () => {
      channel.unsubscribe(onCheck);
      t.app.services.events.emit({
        type: 'health.write_failed',
        source: 'health',
        severity: 'WARN',
        message: 'a last entry',
        details: { pending: 0, error: 'none' },
      });
      stopping = t.app.stop();
    };
    channel.subscribe(onCheck);
    await eventually(() => expect(stopping).toBeDefined(), 10_000);
    await stopping;
    expect(atClose.pinged).toEqual(['last']);
    expect(atClose.events).toContain('health.write_failed');
  });
});

describe('module lifecycle (src/wiring.ts)', () => {
  const deps = (closed: string[]): AppDeps =>
    ({
      env: parseEnv({}),
      log: createLogger('silent'),
      tokens: {} as AppDeps['tokens'],
      database: {
        prisma: {},
        close: async () => {
          closed.push('database');
        },
      } as unknown as Database,
    }) as AppDeps;

  it('builds and starts modules in list order, and stops them in reverse, each awaited, then the database', async () => {
    const steps: string[] = [];
    const slowStop = (name: string) => async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      steps.push(`stop ${name}`);
    };
    const first = defineModule({
      name: 'first',
      create: () => {
        steps.push('create first');
        return 'one';
      },
      start: () => void steps.push('start first'),
      stop: slowStop('first'),
    });
    const second = defineModule({
      name: 'second',
      create: (d: { first: string }) => {
        steps.push(`create second (given ${d.first})`);
        return 'two';
      },
      start: () => void steps.push('start second'),
      stop: slowStop('second'),
    });
    const modules = buildModules(deps(steps), [first, second]);
    await modules.start();
    await modules.stop();
    await modules.stop(); // once only
    expect(steps).toEqual([
      'create first',
      'create second (given one)',
      'start first',
      'start second',
      'stop second',
      'stop first',
      'database',
    ]);
  });

  it('refuses a module that uses a service listed after it, naming both', () => {
    const early = defineModule({ name: 'early', create: (d: { late: string }) => d.late });
    const late = defineModule({ name: 'late', create: () => 'late' });
    expect(() => buildModules(deps([]), [early, late])).toThrow(
      'module "early" uses "late", which is listed after it in src/modules/index.ts',
    );
  });
});
