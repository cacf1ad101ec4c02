import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { codes } from '../helpers/app.js';
import type { FakeNpm } from '../helpers/fake-npm.js';
import { sdkClient } from '../helpers/sdk.js';
import { startUpstream, type Upstream } from './helpers.js';
import { type NpmHarness, proxyApi, resetHarness, startNpmHarness } from './npm-harness.js';

/**
 * updateProxy with Nginx Proxy Manager sync on: only what changes is sent to NPM, and whatever
 * fails, the host and the row end up as they were.
 */

let h: NpmHarness;
let npm: FakeNpm;
let t: TestApp;
let upstream: Upstream;
let other: Upstream;
let api: ReturnType<typeof proxyApi>;

beforeAll(async () => {
  h = await startNpmHarness();
  ({ npm, t, upstream } = h);
  api = proxyApi(h);
  other = await startUpstream();
});

beforeEach(() => resetHarness(h));

/** A proxy and a snapshot of its NPM host, to compare with after a failed update. */
async function synced(domain: string) {
  const proxy = await api.created(domain);
  const hostId = proxy.npmHostId as number;
  return { proxy, hostId, before: structuredClone(npm.hosts.get(hostId)), row: await api.rowById(proxy.id) };
}

describe('update with NPM', () => {
  it('sends only what changes, so what an admin set in NPM (certificate, other names) stays', async () => {
    const { proxy, hostId } = await synced('edit.example.com');
    // An admin adds a name and a certificate in NPM's UI.
    Object.assign(npm.hosts.get(hostId) ?? {}, {
      domain_names: ['edit.example.com', 'alias.example.com'],
      certificate_id: 9,
      ssl_forced: true,
    });
    const renamed = await api.update(proxy.id, { domain: 'edited.example.com' });
    expect(renamed.errors).toBeUndefined();
    expect(api.requestsFor('PUT', hostId).at(-1)?.body).toEqual({
      domain_names: ['edited.example.com', 'alias.example.com'],
    });
    const moved = await api.update(proxy.id, { destination: `${other.url}v2/` });
    expect(moved.errors).toBeUndefined();
    expect(api.requestsFor('PUT', hostId).at(-1)?.body).toEqual({
      forward_scheme: 'http',
      forward_host: '127.0.0.1',
      forward_port: other.port,
      locations: [{ path: '/', forward_scheme: 'http', forward_host: '127.0.0.1/v2/', forward_port: other.port }],
    });
    expect(npm.hosts.get(hostId)).toMatchObject({
      domain_names: ['edited.example.com', 'alias.example.com'],
      certificate_id: 9,
      ssl_forced: true,
      forward_port: other.port,
    });
  });

  it('an update that changes nothing sends nothing to NPM and writes nothing', async () => {
    const { proxy, hostId, row } = await synced('same.example.com');
    const requests = npm.requests.length;
    const res = await api.update(proxy.id, { domain: 'SAME.example.com.', destination: upstream.url });
    expect(res.errors).toBeUndefined();
    expect(res.data?.updateProxy.proxy).toMatchObject({ domain: 'same.example.com', npmHostId: hostId });
    expect(npm.requests.length).toBe(requests);
    expect((await api.rowById(proxy.id)).updatedAt).toEqual(row.updatedAt);
  });

  it('NPM down, or answering 4xx or 5xx: UPSTREAM_UNAVAILABLE, and neither the host nor the row changed', async () => {
    const { proxy, hostId, before, row } = await synced('faults.example.com');
    // modified_on aside: an undo is a write too, as in NPM.
    const unchanged = async () => {
      expect({ ...npm.hosts.get(hostId), modified_on: null }).toEqual({ ...before, modified_on: null });
      expect(await api.rowById(proxy.id)).toEqual(row);
    };

    await npm.down();
    const down = await api.update(proxy.id, { destination: other.url });
    expect(codes(down)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(down.errors?.[0]?.message).toMatch(/unreachable.*; nothing was changed$/);
    await npm.up();
    await unchanged();

    npm.failNext({ method: 'PUT' }, 400, 'data/forward_host must match format "hostname"');
    const rejected = await api.update(proxy.id, { destination: other.url });
    expect(codes(rejected)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(rejected.errors?.[0]?.message).toMatch(/must match format "hostname"; nothing was changed$/);
    await unchanged();

    npm.failNext({ method: 'PUT' }, 500, 'nginx reload failed');
    const failed = await api.update(proxy.id, { domain: 'faults2.example.com' });
    expect(codes(failed)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(failed.errors?.[0]?.message).toMatch(/nothing was changed \(what NPM may have applied was undone\)/);
    await unchanged();
  });

  it('NPM applied the change but its answer was lost: the change is put back in NPM', async () => {
    const { proxy, hostId, before, row } = await synced('lost-update.example.com');
    npm.loseAnswerNext({ method: 'PUT' });
    const res = await api.update(proxy.id, { domain: 'lost-update2.example.com', destination: other.url });
    expect(codes(res)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(res.errors?.[0]?.message).toMatch(/nothing was changed \(what NPM may have applied was undone\)/);
    expect(api.requestsFor('PUT', hostId)).toHaveLength(2);
    expect(npm.hosts.get(hostId)).toMatchObject({
      domain_names: before?.domain_names,
      forward_port: before?.forward_port,
      locations: before?.locations,
    });
    expect(await api.rowById(proxy.id)).toEqual(row);
  });

  it('nginx refuses the new config: the host is put back and the update fails saying why', async () => {
    const { proxy, hostId, before, row } = await synced('nginx-update.example.com');
    npm.failNginxNext('invalid port in upstream');
    const res = await api.update(proxy.id, { destination: other.url });
    expect(codes(res)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(res.errors?.[0]?.message).toMatch(/nginx refused its configuration \(invalid port in upstream\)/);
    expect(npm.hosts.get(hostId)).toMatchObject({ forward_port: before?.forward_port, meta: { nginx_online: true } });
    expect(await api.rowById(proxy.id)).toEqual(row);
  });

  it('a database write that fails after NPM changed: the changed fields are put back as they were', async () => {
    const { proxy, hostId, before } = await synced('restore.example.com');
    await api.refuseWrites('INSERT OR UPDATE');
    const res = await api.update(proxy.id, { domain: 'refused-update.example.com', destination: other.url });
    expect(res.errors).toHaveLength(1);
    expect(api.requestsFor('PUT', hostId).at(-1)?.body).toEqual({
      domain_names: before?.domain_names,
      forward_scheme: before?.forward_scheme,
      forward_host: before?.forward_host,
      forward_port: before?.forward_port,
      locations: before?.locations,
    });
    expect(npm.hosts.get(hostId)).toMatchObject({
      domain_names: before?.domain_names,
      forward_port: before?.forward_port,
      certificate_id: before?.certificate_id,
      meta: expect.objectContaining({ streamgate_create_id: before?.meta.streamgate_create_id }),
    });
    expect((await api.rowById(proxy.id)).domain).toBe('restore.example.com');
  });

  it('a host deleted in NPM behind our back is created again', async () => {
    const proxy = await api.created('recreate.example.com');
    npm.hosts.delete(proxy.npmHostId as number);
    const res = await api.update(proxy.id, { domain: 'recreated.example.com' });
    expect(res.errors).toBeUndefined();
    const [host] = api.hostFor('recreated.example.com');
    expect(host).toBeDefined();
    expect(res.data?.updateProxy.proxy?.npmHostId).toBe(host?.id);
  });

  it('a proxy made before sync was on gets its host, with the certificate from settings, at its next update', async () => {
    const row = await t.db.prisma.proxy.create({ data: { domain: 'legacy.example.com', destination: upstream.url } });
    await sdkClient(t).updateSettings({ input: { sslCertificateId: 7 } });
    try {
      const res = await api.update(row.id, { domain: 'legacy2.example.com' });
      expect(res.errors).toBeUndefined();
      const [host] = api.hostFor('legacy2.example.com');
      expect(host).toMatchObject({ certificate_id: 7, ssl_forced: true });
      expect(res.data?.updateProxy.proxy).toMatchObject({ npmHostId: host?.id, sslCertificateId: 7 });
    } finally {
      await sdkClient(t).updateSettings({ input: { sslCertificateId: null } });
    }
  });

  it("renaming to a domain one of NPM's own hosts serves is CONFLICT before any probe", async () => {
    const { proxy, before } = await synced('rename-clash.example.com');
    const theirs = npm.addHost({ domain_names: ['taken-in-npm.example.com'] });
    const probes = other.paths.length;
    const res = await api.update(proxy.id, { domain: 'taken-in-npm.example.com', destination: other.url });
    expect(codes(res)).toEqual(['CONFLICT']);
    expect(res.errors?.[0]?.message).toContain(`proxy host #${theirs.id}`);
    expect(other.paths.length, 'the new destination was not probed').toBe(probes);
    expect(npm.hosts.get(proxy.npmHostId as number)).toEqual(before);
    expect(api.requestsFor('PUT', proxy.npmHostId)).toEqual([]);
  });
});
