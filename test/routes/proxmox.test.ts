import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StreamGateClient } from '@streamgate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { eventually } from '../helpers/eventually.js';
import { type FakeCluster, FakeProxmox } from '../helpers/fake-proxmox.js';
import { sdkClient } from '../helpers/sdk.js';

/**
 * Proxmox linking against a fake Proxmox VE API (a real HTTP server on 127.0.0.1 speaking its JSON
 * shapes): routes from a routes file, links read through GraphQL, outages and auth failures seen
 * in the event log.
 */

const CLUSTER: FakeCluster = {
  nodes: [
    { name: 'pve1', ip: '10.1.0.1' },
    { name: 'pve2', ip: '10.1.0.2' },
  ],
  guests: [
    { type: 'lxc', vmid: 101, name: 'web', node: 'pve1', ips: ['10.1.1.101'] },
    { type: 'qemu', vmid: 200, name: 'db', node: 'pve2', ips: ['10.1.2.200'] },
    { type: 'qemu', vmid: 201, name: 'grafana', node: 'pve2' }, // no guest agent: matched by name only
    { type: 'lxc', vmid: 102, name: 'old', node: 'pve1', status: 'stopped', ips: ['10.1.1.102'] },
  ],
};

/** alias → upstream; what each should link to is asserted below. */
const ROUTES: Record<string, string> = {
  'pve-ui': 'https://PVE1:8006', // node by name (any case)
  'node-by-ip': 'http://10.1.0.2:9100', // node by IP
  'web-by-ip': 'http://10.1.1.101:80', // LXC by IP
  'web-by-name': 'http://web.lan:80', // LXC by the first label of its host name
  'db-by-ip': 'http://10.1.2.200:5432', // VM by an IP its guest agent reports
  grafana: 'http://192.0.2.30:3000', // VM by alias
  pve2: 'http://web:80', // the alias names a node, the host a guest: the node wins
  elsewhere: 'http://192.0.2.50:80', // nothing matches
  'stopped-guest': 'http://10.1.1.102:80', // a stopped guest tells no addresses
};

let dir: string;
let proxmox: FakeProxmox;
let t: TestApp;
let sg: StreamGateClient;

async function linkOf(alias: string) {
  return (await sg.route({ alias })).route?.proxmox ?? null;
}

/** The stored events of a type, once there are `count` (the event log writes in the background). */
async function events(type: string, count = 1) {
  const read = () => t.db.prisma.eventLog.findMany({ where: { type }, orderBy: { seq: 'asc' } });
  await eventually(async () => expect((await read()).length).toBeGreaterThanOrEqual(count));
  return read();
}

function refresh(): Promise<void> {
  const linker = t.app.services.routes.proxmox;
  if (!linker) throw new Error('Proxmox linking is off');
  return linker.refresh();
}

async function startApp(url: string, env: Record<string, string> = {}): Promise<TestApp> {
  return startTestApp({
    env: {
      ROUTES_FILE: join(dir, 'routes.yaml'),
      PROXMOX_URL: url,
      PROXMOX_TOKEN_ID: proxmox.token.id,
      PROXMOX_TOKEN_SECRET: proxmox.token.secret,
      PROXMOX_REFRESH_MS: '1000',
      EVENT_LOG_MIN_SEVERITY: 'INFO',
      ...env,
    },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamgate-proxmox-'));
  const lines = ['routes:'];
  for (const [alias, upstream] of Object.entries(ROUTES))
    lines.push(`  - alias: ${alias}`, `    upstream: ${upstream}`);
  await writeFile(join(dir, 'routes.yaml'), `${lines.join('\n')}\n`);
  proxmox = await new FakeProxmox(structuredClone(CLUSTER)).start();
  t = await startApp(proxmox.url);
  sg = sdkClient(t);
  await eventually(async () => expect(await linkOf('pve-ui')).not.toBeNull());
});

afterAll(async () => {
  await t?.app.stop();
  await proxmox?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('linking routes to Proxmox', () => {
  it.each([
    ['pve-ui', { node: 'pve1', vmid: 0, vmName: null, type: 'NODE' }],
    ['node-by-ip', { node: 'pve2', vmid: 0, vmName: null, type: 'NODE' }],
    ['web-by-ip', { node: 'pve1', vmid: 101, vmName: 'web', type: 'LXC' }],
    ['web-by-name', { node: 'pve1', vmid: 101, vmName: 'web', type: 'LXC' }],
    ['db-by-ip', { node: 'pve2', vmid: 200, vmName: 'db', type: 'VM' }],
    ['grafana', { node: 'pve2', vmid: 201, vmName: 'grafana', type: 'VM' }],
    ['pve2', { node: 'pve2', vmid: 0, vmName: null, type: 'NODE' }],
  ])('%s', async (alias, link) => {
    expect(await linkOf(alias)).toEqual(link);
  });

  it('links nothing when nothing matches, and reads no address of a stopped guest', async () => {
    expect(await linkOf('elsewhere')).toBeNull();
    expect(await linkOf('stopped-guest')).toBeNull();
    expect(proxmox.requests).toContain('GET /api2/json/nodes/pve1/lxc/101/interfaces');
    expect(proxmox.requests).not.toContain('GET /api2/json/nodes/pve1/lxc/102/interfaces');
  });

  it('reads the inventory again every PROXMOX_REFRESH_MS and follows what changed', async () => {
    proxmox.cluster.guests.push({ type: 'lxc', vmid: 150, name: 'edge', node: 'pve1', ips: ['192.0.2.50'] });
    await eventually(async () => expect(await linkOf('elsewhere')).toMatchObject({ vmid: 150, type: 'LXC' }));
  });
});

describe('when Proxmox fails', () => {
  it('keeps the last links while it is down, with one WARN, and one INFO when it is back', async () => {
    await proxmox.stop();
    for (let i = 0; i < 3; i++) await refresh();
    expect(await linkOf('web-by-ip')).toMatchObject({ vmid: 101 });
    const warned = await events('proxmox.unreachable');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ severity: 'WARN', source: 'routes' });
    expect(warned[0]?.message).toMatch(
      /^Proxmox could not be read; routes keep their last links: Proxmox \/api2\/json\/cluster\/resources: /,
    );

    await proxmox.start();
    await refresh();
    await refresh();
    const recovered = await events('proxmox.recovered');
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ severity: 'INFO' });
  });

  it('drops every link when the token is refused, with one clear ERROR, and links again once accepted', async () => {
    const accepted = proxmox.acceptedToken;
    proxmox.acceptedToken = 'PVEAPIToken=someone@pve!else=nope';
    await refresh();
    await refresh();
    expect(await linkOf('web-by-ip')).toBeNull();
    expect(await linkOf('pve-ui')).toBeNull();
    const failed = await events('proxmox.auth_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ severity: 'ERROR', source: 'routes' });
    expect(failed[0]?.message).toMatch(/Proxmox refused the API token.*HTTP 401.*PROXMOX_TOKEN_ID/);

    proxmox.acceptedToken = accepted;
    await refresh();
    expect(await linkOf('web-by-ip')).toMatchObject({ vmid: 101 });
  });

  it('only reads: every call is a GET of the API', async () => {
    expect(proxmox.requests.length).toBeGreaterThan(0);
    expect(proxmox.requests.filter((r) => !r.startsWith('GET /api2/json/'))).toEqual([]);
  });
});

describe('TLS', () => {
  it('verifies the certificate unless PROXMOX_INSECURE=true', async () => {
    const secure = await new FakeProxmox(structuredClone(CLUSTER), proxmox.token, true).start();
    const strict = await startApp(secure.url);
    try {
      const linker = strict.app.services.routes.proxmox;
      await linker?.refresh();
      const warned = await eventually(async () => {
        const found = await strict.db.prisma.eventLog.findMany({ where: { type: 'proxmox.unreachable' } });
        expect(found).toHaveLength(1);
        return found;
      });
      expect(warned[0]?.message).toMatch(/certificate/i);
      expect(secure.requests).toEqual([]); // the token never left over an unverified connection
    } finally {
      await strict.app.stop();
    }

    const lax = await startApp(secure.url, { PROXMOX_INSECURE: 'true' });
    try {
      await lax.app.services.routes.proxmox?.refresh();
      const link = (await sdkClient(lax).route({ alias: 'web-by-ip' })).route?.proxmox;
      expect(link).toMatchObject({ vmid: 101, type: 'LXC' });
    } finally {
      await lax.app.stop();
      await secure.stop();
    }
  });
});
