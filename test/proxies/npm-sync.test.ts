import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { codes } from '../helpers/app.js';
import type { FakeNpm } from '../helpers/fake-npm.js';
import { sdkClient } from '../helpers/sdk.js';
import type { Upstream } from './helpers.js';
import { type NpmHarness, proxyApi, resetHarness, startNpmHarness } from './npm-harness.js';

/**
 * Create, delete and the merged view with Nginx Proxy Manager sync on (updates: npm-update.test.ts).
 * Whatever fails, NPM and the database end up agreeing.
 */

let h: NpmHarness;
let npm: FakeNpm;
let t: TestApp;
let upstream: Upstream;
let api: ReturnType<typeof proxyApi>;

beforeAll(async () => {
  h = await startNpmHarness();
  ({ npm, t, upstream } = h);
  api = proxyApi(h);
});

beforeEach(() => resetHarness(h));

const installationId = async () => (await t.db.prisma.settings.findUniqueOrThrow({ where: { id: 1 } })).installationId;

describe('create with NPM', () => {
  it('creates the NPM proxy host with the certificate from settings, marked as ours, and records its id', async () => {
    await sdkClient(t).updateSettings({ input: { sslCertificateId: 5 } });
    const proxy = await api.created('synced.example.com');
    const [host] = api.hostFor('synced.example.com');
    expect(host).toMatchObject({
      domain_names: ['synced.example.com'],
      forward_scheme: 'http',
      forward_host: '127.0.0.1',
      forward_port: upstream.port,
      locations: [],
      certificate_id: 5,
      ssl_forced: true,
      meta: expect.objectContaining({
        streamgate_installation: await installationId(),
        streamgate_create_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        nginx_online: true,
      }),
    });
    expect(Date.now() - Date.parse(String(host?.meta.streamgate_created_at))).toBeLessThan(60_000);
    expect(proxy).toMatchObject({ npmHostId: host?.id, sslCertificateId: 5 });
    await sdkClient(t).updateSettings({ input: { sslCertificateId: null } });
    const plain = await api.created('plain.example.com');
    expect(api.hostFor('plain.example.com')[0]).toMatchObject({ certificate_id: 0, ssl_forced: false });
    expect(plain.sslCertificateId).toBeNull();
  });

  it('a destination with a path becomes a custom location "/", the only way NPM forwards to a path', async () => {
    await api.created('pathed.example.com', `http://127.0.0.1:${upstream.port}/app/`);
    expect(api.hostFor('pathed.example.com')[0]).toMatchObject({
      forward_host: '127.0.0.1',
      forward_port: upstream.port,
      locations: [{ path: '/', forward_scheme: 'http', forward_host: '127.0.0.1/app/', forward_port: upstream.port }],
    });
    // A query string cannot be forwarded by NPM: refused before anything is probed or created.
    const probes = upstream.paths.length;
    const res = await api.create('query.example.com', `http://127.0.0.1:${upstream.port}/?a=1`);
    expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.errors?.[0]?.message).toMatch(/query string/);
    expect(upstream.paths.length).toBe(probes);
    expect(api.hostFor('query.example.com')).toEqual([]);
  });

  it("a domain one of NPM's own hosts serves is CONFLICT before any probe, and nothing is created", async () => {
    const theirs = npm.addHost({
      domain_names: ['shop.example.com', 'www.shop.example.com'],
      forward_scheme: 'http',
      forward_host: '10.0.0.9',
      forward_port: 80,
    });
    const hosts = npm.hosts.size;
    const probes = upstream.paths.length;
    const res = await api.create('WWW.shop.example.com');
    expect(codes(res)).toEqual(['CONFLICT']);
    expect(res.errors?.[0]?.message).toBe(
      `www.shop.example.com is already served by Nginx Proxy Manager proxy host #${theirs.id}`,
    );
    expect(upstream.paths.length, 'the destination was not probed').toBe(probes);
    expect(npm.hosts.size).toBe(hosts);
    expect(await api.rowFor('www.shop.example.com')).toBeNull();
  });

  it('NPM down, or answering 4xx/5xx: UPSTREAM_UNAVAILABLE, and no proxy', async () => {
    await npm.down();
    const down = await api.create('down.example.com');
    expect(codes(down)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(down.errors?.[0]?.message).toMatch(/Nginx Proxy Manager.*unreachable.*; nothing was created$/);
    await npm.up();

    npm.failNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 500, 'internal error');
    const failed = await api.create('down.example.com');
    expect(codes(failed)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(failed.errors?.[0]?.message).toMatch(/500.*nothing was created \(what NPM may have applied was undone\)/);

    npm.failNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 400, 'data/forward_host must be hostname');
    const rejected = await api.create('down.example.com');
    expect(codes(rejected)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(rejected.errors?.[0]?.message).toMatch(/data\/forward_host must be hostname; nothing was created$/);

    expect(await api.rowFor('down.example.com')).toBeNull();
    expect(api.hostFor('down.example.com')).toEqual([]);
    // Once NPM works, the same create succeeds.
    expect((await api.created('down.example.com')).npmHostId).toBe(api.hostFor('down.example.com')[0]?.id);
  });

  it('NPM created the host but its answer was lost: the host is found by its create id and removed', async () => {
    npm.loseAnswerNext({ method: 'POST', path: '/api/nginx/proxy-hosts' });
    const res = await api.create('lost.example.com');
    expect(codes(res)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(res.errors?.[0]?.message).toMatch(/nothing was created \(what NPM may have applied was undone\)/);
    expect(api.hostFor('lost.example.com'), 'the host NPM made was removed').toEqual([]);
    expect(await api.rowFor('lost.example.com')).toBeNull();
  });

  it('nginx refuses the config NPM wrote: the host is removed and the create fails saying why', async () => {
    npm.failNginxNext('host not found in upstream "backend.internal"');
    const res = await api.create('refused-nginx.example.com');
    expect(codes(res)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(res.errors?.[0]?.message).toMatch(
      /nginx refused its configuration \(host not found in upstream "backend.internal"\); nothing was created/,
    );
    expect(api.hostFor('refused-nginx.example.com')).toEqual([]);
    expect(await api.rowFor('refused-nginx.example.com')).toBeNull();
  });

  it('a database write that fails after NPM created the host: the host is deleted again', async () => {
    await api.refuseWrites('INSERT OR UPDATE');
    const res = await api.create('refused-create.example.com');
    expect(res.errors).toHaveLength(1);
    expect(await api.rowFor('refused-create.example.com')).toBeNull();
    expect(api.hostFor('refused-create.example.com'), 'compensated').toEqual([]);
    expect(npm.requests.at(-1)).toMatchObject({ method: 'DELETE' });
  });

  it('when the undo fails too: an ERROR says so; the orphan is CONFLICT while young, removed once old', async () => {
    await api.refuseWrites('INSERT OR UPDATE');
    npm.failNext({ method: 'DELETE' }, 503, 'busy');
    const res = await api.create('refused-orphan.example.com');
    expect(res.errors).toHaveLength(1);
    const [orphan] = api.hostFor('refused-orphan.example.com');
    expect(orphan?.meta).toMatchObject({ streamgate_installation: await installationId() });
    await api.lastEvent('proxy.npm_out_of_step', (event) =>
      expect(event).toEqual({
        severity: 'ERROR',
        details: expect.objectContaining({
          operation: 'create',
          npmHostId: orphan?.id,
          domain: 'refused-orphan.example.com',
        }),
      }),
    );
    await t.db.prisma.$executeRawUnsafe('DROP TRIGGER test_refuse_proxy ON "Proxy"');

    // Young: it may be another instance's create in progress, so it is not touched yet.
    const young = await api.create('refused-orphan.example.com');
    expect(codes(young)).toEqual(['CONFLICT']);
    expect(young.errors?.[0]?.message).toMatch(
      /left by a StreamGate create that did not finish; it is removed by a create in \d+ s/,
    );
    expect(npm.hosts.has(orphan?.id as number)).toBe(true);

    // Old enough: the next create removes it.
    (orphan as { meta: Record<string, unknown> }).meta.streamgate_created_at = new Date(
      Date.now() - 120_000,
    ).toISOString();
    const again = await api.created('refused-orphan.example.com');
    expect(npm.hosts.has(orphan?.id as number)).toBe(false);
    expect(api.hostFor('refused-orphan.example.com').map((x) => x.id)).toEqual([again.npmHostId]);
    await api.lastEvent('proxy.npm_orphan_removed', (event) =>
      expect(event).toEqual({
        severity: 'WARN',
        details: { domain: 'refused-orphan.example.com', npmHostId: orphan?.id },
      }),
    );
  });

  it("another installation's host is never taken for an orphan, however old", async () => {
    const foreign = npm.addHost({
      domain_names: ['shared-npm.example.com'],
      meta: {
        streamgate_installation: '00000000-0000-4000-8000-000000000000',
        streamgate_create_id: '00000000-0000-4000-8000-000000000001',
        streamgate_created_at: new Date(Date.now() - 86_400_000).toISOString(),
      },
    });
    const res = await api.create('shared-npm.example.com');
    expect(codes(res)).toEqual(['CONFLICT']);
    expect(res.errors?.[0]?.message).toBe(
      `shared-npm.example.com is already served by Nginx Proxy Manager proxy host #${foreign.id}`,
    );
    expect(npm.hosts.has(foreign.id)).toBe(true);
    expect(npm.requests.some((r) => r.method === 'DELETE' && r.path.endsWith(`/${foreign.id}`))).toBe(false);
  });
});

describe('delete with NPM', () => {
  it('deletes the host too; NPM down, 4xx or 5xx keeps both; a host already gone is fine', async () => {
    const proxy = await api.created('bye.example.com');
    const hostId = proxy.npmHostId as number;
    const keptBoth = async () => {
      expect(await api.rowFor('bye.example.com')).not.toBeNull();
      expect(npm.hosts.has(hostId)).toBe(true);
    };
    await npm.down();
    const down = await api.remove(proxy.id);
    expect(codes(down)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(down.errors?.[0]?.message).toMatch(/unreachable.*; the proxy was not deleted$/);
    await npm.up();
    await keptBoth();

    npm.failNext({ method: 'DELETE' }, 403, 'Permission Denied');
    const denied = await api.remove(proxy.id);
    expect(codes(denied)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(denied.errors?.[0]?.message).toMatch(/HTTP 403.*Permission Denied; the proxy was not deleted$/);
    await keptBoth();

    npm.failNext({ method: 'DELETE' }, 500, 'boom');
    const failed = await api.remove(proxy.id);
    expect(codes(failed)).toEqual(['UPSTREAM_UNAVAILABLE']);
    // A 5xx may come after NPM deleted it: the message says so, and deleting again finishes.
    expect(failed.errors?.[0]?.message).toMatch(/the proxy was not deleted; NPM may have deleted host #\d+/);
    await keptBoth();

    expect((await api.remove(proxy.id)).data).toEqual({ deleteProxy: proxy.id });
    expect(npm.hosts.has(hostId)).toBe(false);
    expect(await api.rowFor('bye.example.com')).toBeNull();

    const gone = await api.created('already-gone.example.com');
    npm.hosts.delete(gone.npmHostId as number);
    expect((await api.remove(gone.id)).data).toEqual({ deleteProxy: gone.id });
    expect(await api.rowFor('already-gone.example.com')).toBeNull();
  });

  it('a database delete that fails after NPM deleted the host: an ERROR, and deleting again finishes', async () => {
    const proxy = await api.created('refused-delete.example.com');
    await api.refuseWrites('DELETE');
    expect((await api.remove(proxy.id)).errors?.length).toBe(1);
    expect(await api.rowFor('refused-delete.example.com')).not.toBeNull();
    await api.lastEvent('proxy.npm_out_of_step', (event) =>
      expect(event.details).toMatchObject({ operation: 'delete', proxyId: proxy.id }),
    );
    await t.db.prisma.$executeRawUnsafe('DROP TRIGGER test_refuse_proxy ON "Proxy"');
    expect((await api.remove(proxy.id)).data).toEqual({ deleteProxy: proxy.id });
  });
});

describe('allProxies', () => {
  const QUERY =
    '{ allProxies { items { source readOnly domains destination npmHostId inSync enabled proxy { id } } npm { enabled reachable error } } }';
  interface Listing {
    source: string;
    readOnly: boolean;
    domains: string[];
    destination: string;
    npmHostId: number | null;
    inSync: boolean | null;
    proxy: { id: string } | null;
  }

  it("lists StreamGate's proxies and NPM's other hosts, marked read-only", async () => {
    const ours = await api.created('merged.example.com');
    const theirs = npm.addHost({
      domain_names: ['legacy.example.org'],
      forward_scheme: 'https',
      forward_host: '10.1.2.3',
      forward_port: 8443,
    });
    const res = await t.gql<{ allProxies: { items: Listing[]; npm: unknown } }, unknown>(QUERY);
    expect(res.data?.allProxies.npm).toEqual({ enabled: true, reachable: true, error: null });
    const items = res.data?.allProxies.items ?? [];
    expect(items.find((i) => i.proxy?.id === ours.id)).toMatchObject({
      source: 'STREAMGATE',
      readOnly: false,
      domains: ['merged.example.com'],
      npmHostId: ours.npmHostId,
      inSync: true,
    });
    expect(items.find((i) => i.npmHostId === theirs.id)).toEqual({
      source: 'NPM',
      readOnly: true,
      domains: ['legacy.example.org'],
      destination: 'https://10.1.2.3:8443/',
      npmHostId: theirs.id,
      inSync: null,
      enabled: true,
      proxy: null,
    });
    // Every NPM host appears once: ours are not listed twice.
    const hostIds = items.map((i) => i.npmHostId).filter((id) => id !== null);
    expect(new Set(hostIds).size).toBe(hostIds.length);

    // Edited by hand in NPM into something that is not even a URL: out of step, not an error.
    Object.assign(npm.hosts.get(ours.npmHostId as number) ?? {}, { forward_host: 'not a host' });
    const edited = await t.gql<{ allProxies: { items: Listing[] } }, unknown>(QUERY);
    expect(edited.errors).toBeUndefined();
    expect(edited.data?.allProxies.items.find((i) => i.proxy?.id === ours.id)?.inSync).toBe(false);
  });

  it('NPM unreachable: our proxies are still listed, and the status says why the rest is missing', async () => {
    await api.created('listed.example.com');
    await npm.down();
    const res = await t.gql<{ allProxies: { items: Listing[]; npm: { reachable: boolean; error: string } } }, unknown>(
      QUERY,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.allProxies.npm).toMatchObject({ enabled: true, reachable: false });
    expect(res.data?.allProxies.npm.error).toMatch(/Nginx Proxy Manager/);
    expect(res.data?.allProxies.items.every((i) => i.source === 'STREAMGATE')).toBe(true);
    expect(res.data?.allProxies.items.map((i) => i.domains[0])).toContain('listed.example.com');
  });
});
