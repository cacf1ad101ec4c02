import diagnostics from 'node:diagnostics_channel';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StreamGateClient } from '@streamgate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvError, parseEnv } from '../src/env.js';
import { parseCidrList } from '../src/lib/cidr.js';
import { OutboundDeniedError, OutboundPolicy } from '../src/lib/outbound.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { type FakeNode, startFakeNode } from './helpers/fake-node.js';
import { rejection, sdkClient } from './helpers/sdk.js';

/**
 * The outbound address policy. Nothing here sends traffic to a denied or non-loopback address:
 * the end-to-end cases put loopback itself on the deny list, and a connect hook (every socket's
 * `connectionAttempt`) proves the refusal came before any connection was tried.
 */
const attempts: string[] = [];
const recordAttempts = ({ socket }: { socket: Socket }) =>
  socket.on('connectionAttempt', (ip: string, port: number) => attempts.push(`${ip}:${port}`));
beforeAll(() => diagnostics.subscribe('net.client.socket', recordAttempts as (message: unknown) => void));
afterAll(() => diagnostics.unsubscribe('net.client.socket', recordAttempts as (message: unknown) => void));

describe('OutboundPolicy.check', () => {
  const policy = (env: { OUTBOUND_DENY?: string; OUTBOUND_ALLOW?: string } = {}) =>
    OutboundPolicy.fromEnv({ PORT: 4000, ...env });

  it('denies link-local and cloud metadata addresses by default, and allows loopback and private ranges', () => {
    const p = policy();
    expect(p.check('169.254.169.254', 80)).toMatch(/link-local or a cloud metadata address \(169\.254\.0\.0\/16\)/);
    expect(p.check('::ffff:169.254.169.254', 80)).toMatch(/denied by default/); // IPv4-mapped is the same address
    expect(p.check('fe80::1', 80)).toMatch(/denied by default/);
    expect(p.check('fd00:ec2::254', 80)).toMatch(/denied by default/);
    for (const allowed of ['127.0.0.1', '10.1.2.3', '192.168.0.9', '172.16.0.1', '::1', '8.8.8.8']) {
      expect(p.check(allowed, 80), allowed).toBeNull();
    }
  });

  it('OUTBOUND_DENY wins; OUTBOUND_ALLOW restricts to its ranges and may re-allow a default-denied one', () => {
    expect(policy({ OUTBOUND_DENY: '10.0.0.0/8' }).check('10.9.9.9', 80)).toMatch(/OUTBOUND_DENY \(10\.0\.0\.0\/8\)/);
    const allowList = policy({ OUTBOUND_ALLOW: '10.0.0.0/8, 169.254.10.0/24', OUTBOUND_DENY: '10.6.6.6' });
    expect(allowList.check('10.1.1.1', 80)).toBeNull();
    expect(allowList.check('169.254.10.5', 80)).toBeNull();
    expect(allowList.check('169.254.169.254', 80)).toMatch(/denied by default/);
    expect(allowList.check('127.0.0.1', 80)).toMatch(/not in OUTBOUND_ALLOW/);
    expect(allowList.check('10.6.6.6', 80)).toMatch(/OUTBOUND_DENY/);
  });

  it("refuses StreamGate's own ports on this host's own addresses only", () => {
    const p = policy();
    expect(p.check('127.0.0.1', 4000)).toMatch(/StreamGate itself/);
    expect(p.check('0.0.0.0', 4000)).toMatch(/StreamGate itself/);
    expect(p.check('127.0.0.1', 4001)).toBeNull();
    expect(p.check('10.9.9.9', 4000)).toBeNull();
    p.addOwnPort(4100);
    expect(p.check('::1', 4100)).toMatch(/StreamGate itself/);
  });

  it('judges a name when it resolves: refused when every address is denied, else only the allowed ones', async () => {
    const resolve = (p: OutboundPolicy) =>
      new Promise<{ error: Error | null; addresses: unknown }>((done) =>
        p.lookup(9)('localhost', { all: true }, (error, addresses) => done({ error, addresses })),
      );
    const denied = policy({ OUTBOUND_DENY: '127.0.0.0/8, ::1' });
    expect(denied.checkLiteral('localhost', 9)).toBeNull(); // not judged before it resolves
    expect((await resolve(denied)).error).toBeInstanceOf(OutboundDeniedError);
    const v4only = await resolve(policy({ OUTBOUND_DENY: '::1' }));
    expect(v4only.error).toBeNull();
    expect(v4only.addresses).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });

  it('is configured with CIDR lists that are checked at start', () => {
    expect(parseCidrList('10.0.0.0/8, ::1 ,192.0.2.7')).toHaveLength(3);
    expect(() => parseEnv({ OUTBOUND_DENY: '10.0.0.0/33' })).toThrow(EnvError);
    expect(() => parseEnv({ OUTBOUND_ALLOW: 'intranet' })).toThrow(/comma-separated list of CIDRs/);
  });
});

describe('every outbound path, with loopback on the deny list', () => {
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  let t: TestApp;
  let sg: StreamGateClient;
  let node: FakeNode;
  let nodeId: string;
  let dir: string;
  const toNode = () => attempts.filter((a) => a.endsWith(`:${node.port}`));

  beforeAll(async () => {
    node = await startFakeNode();
    dir = await mkdtemp(join(tmpdir(), 'sg-outbound-'));
    const routesFile = join(dir, 'routes.yaml');
    await writeFile(
      routesFile,
      [
        'routes:',
        '  - alias: literal',
        `    upstream: http://127.0.0.1:${node.port}`,
        '  - alias: by-name',
        `    upstream: http://localhost:${node.port}`,
        '  - alias: tcp-literal',
        '    kind: stream',
        '    listenPort: 27001',
        `    upstream: 127.0.0.1:${node.port}`,
        '',
      ].join('\n'),
    );
    t = await startTestApp({ env: { OUTBOUND_DENY: '127.0.0.0/8, ::1/128', ROUTES_FILE: routesFile } });
    sg = sdkClient(t);
    // A name, not an IP: accepted at create, refused where it resolves.
    const res = await sg.createCacheNode({ input: { name: 'local', host: 'localhost', apiPort: node.port } });
    nodeId = res.createCacheNode.id;
  });

  it('a node written as a denied IP is BAD_USER_INPUT, and nothing is written', async () => {
    const error = await rejection(sg.createSlbNode({ input: { name: 'lit', host: '127.0.0.1', apiPort: node.port } }));
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.host' });
    expect(error.message).toMatch(/outbound address policy: 127\.0\.0\.1 is in OUTBOUND_DENY/);
    expect(await t.db.prisma.node.count({ where: { name: 'lit' } })).toBe(0);
  });

  it('ping: UNHEALTHY with the policy as the reason; the node never hears of it', async () => {
    const { ping } = await sg.ping({ id: nodeId });
    expect(ping.status).toBe('UNHEALTHY');
    expect(ping.error).toMatch(/refused by the outbound address policy/);
    expect(node.requests).toEqual([]);
    expect(toNode()).toEqual([]);
  });

  it('the passthrough: 403 UPSTREAM_FORBIDDEN', async () => {
    const res = await t.fetch(`/proxy/caches/${nodeId}/api/ping`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: 'UPSTREAM_FORBIDDEN' } });
    expect(node.requests).toEqual([]);
    expect(toNode()).toEqual([]);
  });

  it('proxy validation: a failed TCP step with its own hint; a denied literal destination is BAD_USER_INPUT', async () => {
    const { validateProxy } = await sg.validateProxy({ input: { destination: `http://localhost:${node.port}/` } });
    expect(validateProxy.ok).toBe(false);
    expect(validateProxy.steps.map((s) => [s.name, s.ok])).toEqual([
      ['SYNTAX', true],
      ['DNS', true],
      ['TCP', false],
    ]);
    expect(validateProxy.steps[2]?.hint).toMatch(/may not connect to this address/);
    const created = await rejection(
      sg.createProxy({ input: { domain: 'lit.example.com', destination: `http://127.0.0.1:${node.port}/` } }),
    );
    expect(created).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.destination' });
    expect(node.requests).toEqual([]);
    expect(toNode()).toEqual([]);
  });

  it('routes: an upstream IP the policy refuses is EXCLUDED with the reason; a name fails its health check', async () => {
    const { routes } = await sg.routes();
    const byAlias = new Map(routes.map((r) => [r.alias, r]));
    expect(byAlias.get('literal')).toMatchObject({
      kind: 'EXCLUDED',
      excludedReason: expect.stringMatching(
        /^upstream refused by the outbound address policy: 127\.0\.0\.1 is in OUTBOUND_DENY/,
      ),
    });
    expect(byAlias.get('tcp-literal')?.kind).toBe('EXCLUDED');
    expect(byAlias.get('by-name')?.kind).toBe('HTTP');
    await t.app.services.health.checkAll();
    const { route } = await sg.route({ alias: 'by-name' });
    expect(route?.health).toMatchObject({
      status: 'UNHEALTHY',
      detail: expect.stringMatching(/refused by the outbound address policy/),
    });
    expect(node.requests).toEqual([]);
    expect(toNode()).toEqual([]);
  });
});
