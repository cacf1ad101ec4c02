import { beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { startFakeNode } from '../helpers/fake-node.js';
import { startFakeNpm } from '../helpers/fake-npm.js';
import { graphqlWsClient } from '../helpers/graphql-ws.js';
import { createSharedSchema, gqlAt, type Instance, startInstance } from '../helpers/instance.js';
import { dispose } from '../helpers/leftovers.js';
import { PrivateRedis } from '../helpers/redis.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { startUpstream } from '../proxies/helpers.js';

/**
 * Several real `streamgate serve` processes on one PostgreSQL schema and one Redis (issue 22):
 * what one instance changes, the others' subscribers and caches see within a second. Needs the
 * second run of `.ci/run` (TEST_DATABASE_URL, TEST_REDIS_URL): the embedded database is
 * single-process, so there is no cluster to test on it (test/cli.test.ts tests that REDIS_URL is
 * refused there).
 */

const PG = process.env.TEST_DATABASE_URL;
const REDIS = process.env.TEST_REDIS_URL;
const SECOND = 1_000;

type Entry = { id: string; type: string; cursor: string };

/** A graphql-ws subscription to `eventLogged` on an instance, collecting what arrives. */
function watchEvents(instance: Instance, source = 'nodes'): { entries: Entry[]; ready: Promise<void> } {
  const entries: Entry[] = [];
  const client = graphqlWsClient(instance);
  const ready = new Promise<void>((resolve, reject) => {
    client.on('connected', () => setTimeout(resolve, 100));
    client.subscribe<{ eventLogged: Entry }>(
      { query: `subscription { eventLogged(source: "${source}") { id type cursor } }` },
      { next: (msg) => msg.data && entries.push(msg.data.eventLogged), error: reject, complete: () => {} },
    );
  });
  return { entries, ready };
}

async function createStreamer(instance: Instance, name: string): Promise<string> {
  const res = await gqlAt<{ createStreamer: { id: string } }>(
    instance,
    `mutation { createStreamer(input: { name: "${name}", host: "127.0.0.1", httpPort: 8080, apiPort: 9 }) { id } }`,
  );
  expect(res.errors).toBeUndefined();
  return res.data?.createStreamer.id as string;
}

async function streamerNames(instance: Instance): Promise<string[]> {
  const res = await gqlAt<{ streamers: { edges: { node: { name: string } }[] } }>(
    instance,
    '{ streamers(first: 100) { edges { node { name } } } }',
  );
  expect(res.errors).toBeUndefined();
  return res.data?.streamers.edges.map((e) => e.node.name) ?? [];
}

describe.runIf(PG && REDIS)('several instances on PostgreSQL + Redis', () => {
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    const database = await createSharedSchema(PG as string);
    // A long cache TTL: only the cross-instance invalidation can make B's reads fresh in time.
    const env = { DATABASE_URL: database, REDIS_URL: REDIS as string, RESPONSE_CACHE_TTL_MS: '600000' };
    a = await startInstance({ ...env, INSTANCE_ID: 'a' });
    b = await startInstance({ ...env, INSTANCE_ID: 'b', ADMIN_TOKEN: a.token });
  }, 60_000);

  it('a mutation on A reaches an eventLogged subscriber on B within 1 s', async () => {
    const watch = watchEvents(b);
    await watch.ready;
    const started = Date.now();
    await createStreamer(a, 'cluster-one');
    await eventually(() => expect(watch.entries.map((e) => e.type)).toContain('node.created'), SECOND);
    expect(Date.now() - started).toBeLessThan(SECOND + 200);
  });

  it('an event that is not stored (below EVENT_LOG_MIN_SEVERITY) reaches B through Redis as it is', async () => {
    const watch = watchEvents(b, 'sessions');
    await watch.ready;
    await gqlAt(a, 'mutation { createSession(clientId: "0f0e0d0c-0b0a-4998-8776-655443322110") { sessionId } }');
    await eventually(() => expect(watch.entries.map((e) => e.type)).toEqual(['session.created']), SECOND);
    expect(watch.entries[0]?.id).toMatch(/^live-/);
  });

  it("B's cached reads show A's writes within 1 s", async () => {
    const before = await streamerNames(b);
    expect(await streamerNames(b)).toEqual(before); // cached now, for 10 minutes
    await createStreamer(a, 'cluster-two');
    await eventually(async () => expect(await streamerNames(b)).toContain('cluster-two'), SECOND);

    await gqlAt(a, 'mutation { updateSettings(input: { staleThresholdDays: 33 }) { staleThresholdDays } }');
    await eventually(async () => {
      const res = await gqlAt<{ settings: { staleThresholdDays: number } }>(b, '{ settings { staleThresholdDays } }');
      expect(res.data?.settings.staleThresholdDays).toBe(33);
    }, SECOND);
  });

  it('a token revoked on A is refused by B within 1 s (its token cache is emptied)', async () => {
    const created = await gqlAt<{ createApiToken: { token: string; apiToken: { id: string } } }>(
      a,
      'mutation { createApiToken(name: "cluster-viewer", role: VIEWER) { token apiToken { id } } }',
    );
    const { token, apiToken } = created.data?.createApiToken ?? { token: '', apiToken: { id: '' } };
    expect((await gqlAt(b, '{ __typename }', { token })).errors).toBeUndefined();
    await gqlAt(a, `mutation { revokeApiToken(id: "${apiToken.id}") { id } }`);
    await eventually(async () => {
      const res = await gqlAt(b, '{ __typename }', { token });
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }, SECOND);
  });

  it('B publishes what A and B store in seq order, each entry once', async () => {
    const watch = watchEvents(b);
    await watch.ready;
    for (let i = 0; i < 10; i++) await createStreamer(i % 2 ? a : b, `cluster-order-${i}`);
    await eventually(() => expect(watch.entries.filter((e) => e.type === 'node.created')).toHaveLength(10), 5 * SECOND);
    const seqs = watch.entries.map((e) => BigInt(e.id));
    expect([...seqs].sort((x, y) => (x < y ? -1 : 1))).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
  });
});

describe.runIf(PG)('Redis going away and coming back', () => {
  it('subscribers on B get every entry A stored meanwhile, once each, in order', async () => {
    const redis = await PrivateRedis.start();
    const database = await createSharedSchema(PG as string);
    const env = { DATABASE_URL: database, REDIS_URL: redis.url };
    const a = await startInstance({ ...env, INSTANCE_ID: 'a' });
    const b = await startInstance({ ...env, INSTANCE_ID: 'b', ADMIN_TOKEN: a.token });
    const watch = watchEvents(b);
    await watch.ready;
    await createStreamer(a, 'before-outage');
    await eventually(() => expect(watch.entries).toHaveLength(1), SECOND);

    await redis.kill();
    for (let i = 0; i < 5; i++) await createStreamer(a, `during-outage-${i}`);
    await redis.start();
    await createStreamer(a, 'after-outage');

    await eventually(() => expect(watch.entries).toHaveLength(7), 15 * SECOND);
    const seqs = watch.entries.map((e) => BigInt(e.id));
    expect([...seqs].sort((x, y) => (x < y ? -1 : 1))).toEqual(seqs);
    expect(new Set(seqs).size).toBe(7);
  }, 60_000);
});

type Change = { subjectId: string; from: string; to: string };

/** A graphql-ws subscription to `healthChanged` on an instance, collecting what arrives. */
function watchHealth(instance: Instance): { changes: Change[]; ready: Promise<void> } {
  const changes: Change[] = [];
  const client = graphqlWsClient(instance);
  const ready = new Promise<void>((resolve, reject) => {
    client.on('connected', () => setTimeout(resolve, 100));
    client.subscribe<{ healthChanged: Change }>(
      { query: 'subscription { healthChanged { subjectId from to } }' },
      { next: (msg) => msg.data && changes.push(msg.data.healthChanged), error: reject, complete: () => {} },
    );
  });
  return { changes, ready };
}

type ClusterView = { self: string; leader: string | null; instances: { id: string; leader: boolean }[] };

async function clusterOf(instance: Instance): Promise<ClusterView> {
  const res = await gqlAt<{ cluster: ClusterView }>(instance, '{ cluster { self leader instances { id leader } } }');
  expect(res.errors).toBeUndefined();
  return res.data?.cluster as ClusterView;
}

describe.runIf(PG && REDIS)('one monitor leader', () => {
  it('one instance leads; killed with SIGKILL, the other leads within two intervals, and no transition is doubled or lost', async () => {
    const node = await startFakeNode();
    const database = await createSharedSchema(PG as string);
    const env = { DATABASE_URL: database, REDIS_URL: REDIS as string, HEALTH_MONITOR: 'on' };
    const a = await startInstance({ ...env, INSTANCE_ID: 'a' });
    const b = await startInstance({ ...env, INSTANCE_ID: 'b', ADMIN_TOKEN: a.token });
    const settings = 'healthCheckIntervalSeconds: 1, healthFailureThreshold: 1, healthSuccessThreshold: 1';
    await gqlAt(a, `mutation { updateSettings(input: { ${settings} }) { staleThresholdDays } }`);

    // Exactly one leader, and both instances listed with it, on either instance.
    const view = await eventually(async () => {
      const seen = await clusterOf(a);
      expect(seen.instances).toHaveLength(2);
      expect(seen.instances.filter((i) => i.leader)).toHaveLength(1);
      return seen;
    }, 10 * SECOND);
    const ready = await fetch(`${b.url}/ready`).then((r) => r.json() as Promise<{ cluster?: ClusterView }>);
    expect(ready.cluster?.leader).toBe(view.leader);
    expect(ready.cluster?.instances).toHaveLength(2);

    const leaderIsA = view.leader === view.self;
    const [leader, survivor] = leaderIsA ? [a, b] : [b, a];
    const watch = watchHealth(survivor);
    await watch.ready;
    const id = await createStreamer(a, 'watched');
    await gqlAt(a, `mutation { updateStreamer(id: "${id}", input: { apiPort: ${node.port} }) { id } }`);
    await eventually(
      () => expect(watch.changes).toContainEqual({ subjectId: id, from: 'UNKNOWN', to: 'HEALTHY' }),
      10 * SECOND,
    );
    await new Promise((r) => setTimeout(r, 1_500)); // the leader stores results every second

    leader.child.kill('SIGKILL');
    const killedAt = Date.now();
    await eventually(async () => {
      const seen = await clusterOf(survivor);
      expect(seen.leader).toBe(seen.self);
    }, 10 * SECOND);
    expect(Date.now() - killedAt).toBeLessThan(2 * SECOND + 1_000);

    node.ping = 'down';
    await eventually(
      () => expect(watch.changes).toContainEqual({ subjectId: id, from: 'HEALTHY', to: 'UNHEALTHY' }),
      10 * SECOND,
    );
    await new Promise((r) => setTimeout(r, 2_000)); // room for a doubled one to show
    expect(watch.changes.filter((c) => c.subjectId === id)).toEqual([
      { subjectId: id, from: 'UNKNOWN', to: 'HEALTHY' },
      { subjectId: id, from: 'HEALTHY', to: 'UNHEALTHY' },
    ]);
  }, 60_000);
});

describe.runIf(PG && REDIS)('proxy changes across instances', () => {
  it('two instances creating the same domain at once: one succeeds, NPM is asked once and holds one host', async () => {
    const npm = await startFakeNpm();
    dispose(npm, (n) => n.close());
    const upstream = await startUpstream();
    const database = await createSharedSchema(PG as string);
    const env = {
      DATABASE_URL: database,
      REDIS_URL: REDIS as string,
      NPM_URL: npm.url,
      NPM_EMAIL: npm.email,
      NPM_PASSWORD: npm.password,
    };
    const a = await startInstance({ ...env, INSTANCE_ID: 'a' });
    const b = await startInstance({ ...env, INSTANCE_ID: 'b', ADMIN_TOKEN: a.token });
    // The first host creation takes a while: the other instance's change starts meanwhile.
    npm.delayNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 500);
    const create = (instance: Instance) =>
      gqlAt<{ createProxy: { proxy: { id: string } | null } }>(
        instance,
        `mutation { createProxy(input: { domain: "race.example.com", destination: "${upstream.url}" }) { proxy { id } } }`,
      );
    const results = await Promise.all([create(a), create(b)]);
    const succeeded = results.filter((r) => r.data?.createProxy.proxy);
    const refused = results.filter((r) => r.errors);
    expect(succeeded).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const hosts = [...npm.hosts.values()].filter((h) => h.domain_names.includes('race.example.com'));
    expect(hosts).toHaveLength(1);
    // The loser waited for the winner, then saw the domain taken: it never asked NPM to create it.
    expect(npm.requests.filter((r) => r.method === 'POST' && r.path === '/api/nginx/proxy-hosts')).toHaveLength(1);
  }, 60_000);
});

describe.runIf(PG && REDIS)('PostgreSQL going away and coming back', () => {
  it('the instances answer UNAVAILABLE while it is away and recover without a restart, with a leader again', async () => {
    const database = new URL(await createSharedSchema(PG as string));
    const relay = await startTcpProxy(Number(database.port || 5432), database.hostname);
    database.host = `127.0.0.1:${relay.port}`;
    const env = { DATABASE_URL: database.toString(), REDIS_URL: REDIS as string };
    const a = await startInstance({ ...env, INSTANCE_ID: 'a' });
    const b = await startInstance({ ...env, INSTANCE_ID: 'b', ADMIN_TOKEN: a.token });
    await createStreamer(a, 'before-outage');

    relay.cut();
    for (const instance of [a, b]) {
      const res = await gqlAt(
        instance,
        `mutation { createStreamer(input: { name: "during-${instance === a ? 'a' : 'b'}", host: "127.0.0.1", httpPort: 1, apiPort: 2 }) { id } }`,
      );
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
      expect((await fetch(`${instance.url}/ready`)).status).toBe(503);
    }

    relay.restore();
    await eventually(async () => expect((await fetch(`${b.url}/ready`)).status).toBe(200), 15 * SECOND);
    await eventually(async () => {
      const res = await gqlAt(
        b,
        'mutation { createStreamer(input: { name: "after-outage", host: "127.0.0.1", httpPort: 1, apiPort: 2 }) { id } }',
      );
      expect(res.errors).toBeUndefined();
    }, 15 * SECOND);
    await eventually(async () => expect(await streamerNames(a)).toContain('after-outage'), 5 * SECOND);
    await eventually(async () => expect((await clusterOf(a)).leader).not.toBeNull(), 10 * SECOND);
  }, 60_000);
});
