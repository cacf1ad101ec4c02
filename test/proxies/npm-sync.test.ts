import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { type FakeNpm, startFakeNpm } from '../helpers/fake-npm.js';
import { startUpstream, type Upstream } from './helpers.js';

/**
 * Proxies with Nginx Proxy Manager sync on, against a fake NPM that follows its published API
 * schema (test/helpers/fake-npm.ts). Whatever fails, NPM and the database end up agreeing.
 */

interface ProxyShape {
  id: string;
  domain: string;
  destination: string;
  sslCertificateId: number | null;
  npmHostId: number | null;
}
interface Payload {
  proxy: ProxyShape | null;
  validation: { ok: boolean };
}

const PAYLOAD = 'proxy { id domain destination sslCertificateId npmHostId } validation { ok }';

let npm: FakeNpm;
let t: TestApp;
let upstream: Upstream;

beforeAll(async () => {
  npm = await startFakeNpm();
  upstream = await startUpstream();
  t = await startTestApp({ env: { NPM_URL: npm.url, NPM_EMAIL: npm.email, NPM_PASSWORD: npm.password } });
});

beforeEach(async () => {
  // A failure a test asked for and did not use must not leak into the next one.
  await npm.up();
  await t.db.prisma.$executeRawUnsafe('DROP TRIGGER IF EXISTS test_refuse_proxy ON "Proxy"');
});

const create = (domain: string, destination = upstream.url) =>
  t.gql<{ createProxy: Payload }, unknown>(
    `mutation($input: CreateProxyInput!) { createProxy(input: $input) { ${PAYLOAD} } }`,
    { input: { domain, destination } },
  );
const update = (id: string, input: Record<string, unknown>) =>
  t.gql<{ updateProxy: Payload }, unknown>(
    `mutation($id: ID!, $input: UpdateProxyInput!) { updateProxy(id: $id, input: $input) { ${PAYLOAD} } }`,
    { id, input },
  );
const remove = (id: string) => t.gql<{ deleteProxy: string }, unknown>(`mutation { deleteProxy(id: "${id}") }`);

async function created(domain: string, destination = upstream.url): Promise<ProxyShape> {
  const res = await create(domain, destination);
  expect(res.errors).toBeUndefined();
  return res.data?.createProxy.proxy as ProxyShape;
}

const hostFor = (domain: string) => [...npm.hosts.values()].filter((h) => h.domain_names.includes(domain));
const rowFor = (domain: string) => t.db.prisma.proxy.findUnique({ where: { domain } });

/** Makes the database refuse writes (`op`) of proxies whose domain starts with `refused`: a real failing write. */
async function refuseWrites(op: 'INSERT OR UPDATE' | 'DELETE') {
  await t.db.prisma.$executeRawUnsafe(`
    CREATE OR REPLACE FUNCTION test_refuse_proxy() RETURNS trigger AS $$
    BEGIN
      IF (TG_OP = 'DELETE' AND OLD.domain LIKE 'refused%') OR (TG_OP <> 'DELETE' AND NEW.domain LIKE 'refused%') THEN
        RAISE EXCEPTION 'refused by the test';
      END IF;
      RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END $$ LANGUAGE plpgsql`);
  await t.db.prisma.$executeRawUnsafe(
    `CREATE TRIGGER test_refuse_proxy BEFORE ${op} ON "Proxy" FOR EACH ROW EXECUTE FUNCTION test_refuse_proxy()`,
  );
}

async function eventsOf(type: string) {
  return t.db.prisma.eventLog.findMany({
    where: { type },
    orderBy: { seq: 'asc' },
    select: { severity: true, details: true },
  });
}

describe('create with NPM', () => {
  it('creates the NPM proxy host with the certificate from settings, and records its id', async () => {
    await t.gql('mutation { updateSettings(input: { sslCertificateId: 5 }) { sslCertificateId } }');
    const proxy = await created('synced.example.com', `http://127.0.0.1:${upstream.port}/app`);
    const [host] = hostFor('synced.example.com');
    expect(host).toMatchObject({
      domain_names: ['synced.example.com'],
      forward_scheme: 'http',
      forward_host: '127.0.0.1/app',
      forward_port: upstream.port,
      certificate_id: 5,
      ssl_forced: true,
      meta: expect.objectContaining({ streamgate_managed: true }),
    });
    expect(proxy).toMatchObject({ npmHostId: host?.id, sslCertificateId: 5 });
    await t.gql('mutation { updateSettings(input: { sslCertificateId: null }) { sslCertificateId } }');
    const plain = await created('plain.example.com');
    expect(hostFor('plain.example.com')[0]).toMatchObject({ certificate_id: 0, ssl_forced: false });
    expect(plain.sslCertificateId).toBeNull();
  });

  it("a domain one of NPM's own hosts serves is CONFLICT, and nothing is created", async () => {
    const theirs = npm.addHost({
      domain_names: ['shop.example.com', 'www.shop.example.com'],
      forward_scheme: 'http',
      forward_host: '10.0.0.9',
      forward_port: 80,
    });
    const hosts = npm.hosts.size;
    const res = await create('WWW.shop.example.com');
    expect(codes(res)).toEqual(['CONFLICT']);
    expect(res.errors?.[0]?.message).toBe(
      `www.shop.example.com is already served by Nginx Proxy Manager proxy host #${theirs.id}`,
    );
    expect(npm.hosts.size).toBe(hosts);
    expect(await rowFor('www.shop.example.com')).toBeNull();
  });

  it('NPM down, or answering 4xx/5xx: UPSTREAM_UNAVAILABLE, and no proxy', async () => {
    await npm.down();
    const down = await create('down.example.com');
    expect(codes(down)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(down.errors?.[0]?.message).toMatch(/Nginx Proxy Manager.*nothing was created/);
    await npm.up();

    npm.failNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 500, 'internal error');
    const failed = await create('down.example.com');
    expect(codes(failed)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(failed.errors?.[0]?.message).toMatch(/500.*nothing was created/);

    npm.failNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 400, 'data/forward_host must be hostname');
    const rejected = await create('down.example.com');
    expect(codes(rejected)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(rejected.errors?.[0]?.message).toContain('data/forward_host must be hostname');

    expect(await rowFor('down.example.com')).toBeNull();
    expect(hostFor('down.example.com')).toEqual([]);
    // Once NPM works, the same create succeeds.
    expect((await created('down.example.com')).npmHostId).toBe(hostFor('down.example.com')[0]?.id);
  });

  it('a database write that fails after NPM created the host: the host is deleted again', async () => {
    await refuseWrites('INSERT OR UPDATE');
    const res = await create('refused-create.example.com');
    expect(res.errors?.length).toBe(1);
    expect(await rowFor('refused-create.example.com')).toBeNull();
    expect(hostFor('refused-create.example.com'), 'compensated').toEqual([]);
    expect(npm.requests.filter((r) => r.method === 'DELETE').length).toBeGreaterThan(0);
  });

  it('when the undo fails too: an ERROR says so, and the orphan is removed by the next create', async () => {
    await refuseWrites('INSERT OR UPDATE');
    npm.failNext({ method: 'DELETE' }, 503, 'busy');
    const res = await create('refused-orphan.example.com');
    expect(res.errors?.length).toBe(1);
    const [orphan] = hostFor('refused-orphan.example.com');
    expect(orphan?.meta).toMatchObject({ streamgate_managed: true });
    expect((await eventsOf('proxy.npm_out_of_step')).at(-1)).toEqual({
      severity: 'ERROR',
      details: expect.objectContaining({
        operation: 'create',
        npmHostId: orphan?.id,
        domain: 'refused-orphan.example.com',
      }),
    });

    await t.db.prisma.$executeRawUnsafe('DROP TRIGGER test_refuse_proxy ON "Proxy"');
    const again = await created('refused-orphan.example.com');
    expect(npm.hosts.has(orphan?.id as number)).toBe(false);
    expect(hostFor('refused-orphan.example.com').map((h) => h.id)).toEqual([again.npmHostId]);
    expect((await eventsOf('proxy.npm_orphan_removed')).at(-1)).toEqual({
      severity: 'WARN',
      details: { domain: 'refused-orphan.example.com', npmHostId: orphan?.id },
    });
  });
});

describe('update with NPM', () => {
  it('keeps the host in step; an NPM failure changes nothing', async () => {
    const proxy = await created('edit.example.com');
    const other = await startUpstream();
    const res = await update(proxy.id, { domain: 'edited.example.com', destination: other.url });
    expect(res.errors).toBeUndefined();
    expect(npm.hosts.get(proxy.npmHostId as number)).toMatchObject({
      domain_names: ['edited.example.com'],
      forward_port: other.port,
    });

    npm.failNext({ method: 'PUT' }, 500, 'nginx reload failed');
    const failed = await update(proxy.id, { domain: 'edited-again.example.com' });
    expect(codes(failed)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(failed.errors?.[0]?.message).toMatch(/nothing was changed/);
    expect((await t.db.prisma.proxy.findUnique({ where: { id: proxy.id } }))?.domain).toBe('edited.example.com');
    expect(npm.hosts.get(proxy.npmHostId as number)?.domain_names).toEqual(['edited.example.com']);
  });

  it('a host deleted in NPM behind our back is created again', async () => {
    const proxy = await created('recreate.example.com');
    npm.hosts.delete(proxy.npmHostId as number);
    const res = await update(proxy.id, { domain: 'recreated.example.com' });
    expect(res.errors).toBeUndefined();
    const [host] = hostFor('recreated.example.com');
    expect(host).toBeDefined();
    expect(res.data?.updateProxy.proxy?.npmHostId).toBe(host?.id);
  });

  it('a proxy made before sync was on gets its host at its next update', async () => {
    const row = await t.db.prisma.proxy.create({ data: { domain: 'legacy.example.com', destination: upstream.url } });
    const res = await update(row.id, { domain: 'legacy2.example.com' });
    expect(res.errors).toBeUndefined();
    expect(res.data?.updateProxy.proxy?.npmHostId).toBe(hostFor('legacy2.example.com')[0]?.id);
  });

  it('a database write that fails after NPM changed: the host is put back as it was', async () => {
    const proxy = await created('restore.example.com');
    const before = structuredClone(npm.hosts.get(proxy.npmHostId as number));
    await refuseWrites('INSERT OR UPDATE');
    const res = await update(proxy.id, { domain: 'refused-update.example.com' });
    expect(res.errors?.length).toBe(1);
    const after = npm.hosts.get(proxy.npmHostId as number);
    expect(after?.domain_names).toEqual(before?.domain_names);
    expect(after?.forward_port).toBe(before?.forward_port);
    expect((await t.db.prisma.proxy.findUnique({ where: { id: proxy.id } }))?.domain).toBe('restore.example.com');
  });
});

describe('delete with NPM', () => {
  it('deletes the host too; NPM down keeps both; a host already gone is fine', async () => {
    const proxy = await created('bye.example.com');
    await npm.down();
    const down = await remove(proxy.id);
    expect(codes(down)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(down.errors?.[0]?.message).toMatch(/the proxy was not deleted/);
    await npm.up();
    expect(await rowFor('bye.example.com')).not.toBeNull();
    expect(npm.hosts.has(proxy.npmHostId as number)).toBe(true);

    npm.failNext({ method: 'DELETE' }, 500, 'boom');
    expect(codes(await remove(proxy.id))).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(await rowFor('bye.example.com')).not.toBeNull();

    expect((await remove(proxy.id)).data).toEqual({ deleteProxy: proxy.id });
    expect(npm.hosts.has(proxy.npmHostId as number)).toBe(false);
    expect(await rowFor('bye.example.com')).toBeNull();

    const gone = await created('already-gone.example.com');
    npm.hosts.delete(gone.npmHostId as number);
    expect((await remove(gone.id)).data).toEqual({ deleteProxy: gone.id });
    expect(await rowFor('already-gone.example.com')).toBeNull();
  });

  it('a database delete that fails after NPM deleted the host: an ERROR, and deleting again finishes', async () => {
    const proxy = await created('refused-delete.example.com');
    await refuseWrites('DELETE');
    expect((await remove(proxy.id)).errors?.length).toBe(1);
    expect(await rowFor('refused-delete.example.com')).not.toBeNull();
    expect((await eventsOf('proxy.npm_out_of_step')).at(-1)?.details).toMatchObject({
      operation: 'delete',
      proxyId: proxy.id,
    });
    await t.db.prisma.$executeRawUnsafe('DROP TRIGGER test_refuse_proxy ON "Proxy"');
    expect((await remove(proxy.id)).data).toEqual({ deleteProxy: proxy.id });
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
    const ours = await created('merged.example.com');
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
  });

  it('NPM unreachable: our proxies are still listed, and the status says why the rest is missing', async () => {
    await created('listed.example.com');
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
