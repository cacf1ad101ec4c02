import { inspect } from 'node:util';
import { Agent } from 'undici';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { isDomainTaken, NpmClient, type NpmClientOptions, NpmError } from '../../src/modules/proxies/npm/client.js';
import type { NpmProxyHost, NpmProxyHostInput } from '../../src/modules/proxies/npm/types.js';
import { type FakeNpm, startFakeNpm } from '../helpers/fake-npm.js';
import { dispose } from '../helpers/leftovers.js';

/**
 * The Nginx Proxy Manager client against a fake NPM that follows NPM's published API schema
 * (test/helpers/fake-npm.ts): real HTTP on 127.0.0.1, NPM's status codes and error shape.
 */

let npm: FakeNpm;

beforeEach(async () => {
  npm = await startFakeNpm();
});

function clientFor(fake: FakeNpm, options: Partial<NpmClientOptions> = {}): NpmClient {
  const client = new NpmClient({ url: fake.url, email: fake.email, password: fake.password, ...options });
  return dispose(client, (c) => c.close());
}

function hostInput(domain: string, overrides: Partial<NpmProxyHostInput> = {}): NpmProxyHostInput {
  return { domain_names: [domain], forward_scheme: 'http', forward_host: '10.0.0.5', forward_port: 8080, ...overrides };
}

const tokenRequests = (fake: FakeNpm) => fake.requests.filter((r) => r.method === 'POST' && r.path === '/api/tokens');
const bearerTokens = (fake: FakeNpm) =>
  fake.requests.map((r) => /^Bearer (.+)$/.exec(r.headers.authorization ?? '')?.[1]).filter((t) => t !== undefined);

/**
 * The NpmError `promise` rejects with. Every one is also checked for secrets: neither the password
 * nor any token the fake issued may appear in it.
 */
async function npmError(promise: Promise<unknown>, fake: FakeNpm = npm): Promise<NpmError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NpmError);
  const { message, npmMessage } = error as NpmError;
  for (const secret of [fake.password, ...bearerTokens(fake)]) {
    expect(message).not.toContain(secret);
    expect(npmMessage ?? '').not.toContain(secret);
  }
  return error as NpmError;
}

describe('authentication', () => {
  it('logs in once and reuses the token, for sequential and concurrent calls', async () => {
    const client = clientFor(npm);
    await Promise.all([client.listProxyHosts(), client.listProxyHosts(), client.getProxyHost(1)]);
    await client.listProxyHosts();
    await client.createProxyHost(hostInput('once.example.com'));
    const logins = tokenRequests(npm);
    expect(logins).toHaveLength(1);
    expect(logins[0]?.body).toEqual({ identity: npm.email, secret: npm.password });
    // Every API call carried the one token.
    expect(new Set(bearerTokens(npm)).size).toBe(1);
    expect(bearerTokens(npm)).toHaveLength(5);
  });

  it('an expired token: one fresh login, shared by concurrent calls, and each call retried once', async () => {
    const client = clientFor(npm);
    await client.createProxyHost(hostInput('expiry.example.com'));
    npm.expireTokens();
    const before = npm.requests.length;

    const lists = await Promise.all([client.listProxyHosts(), client.listProxyHosts(), client.listProxyHosts()]);
    for (const hosts of lists) expect(hosts.map((h) => h.domain_names)).toEqual([['expiry.example.com']]);
    expect(tokenRequests(npm)).toHaveLength(2);
    const after = npm.requests.slice(before);
    // Three rejected calls, one login, three retries.
    expect(after.filter((r) => r.path === '/api/nginx/proxy-hosts')).toHaveLength(6);
    expect(after.filter((r) => r.path === '/api/tokens')).toHaveLength(1);
    expect(new Set(bearerTokens(npm)).size).toBe(2);
  });

  it('a 401 that outlives a fresh login is `auth`, after exactly one retry', async () => {
    const client = clientFor(npm);
    npm.failNext({ method: 'GET', path: '/api/nginx/proxy-hosts' }, 401, 'Token has expired', 2);
    const error = await npmError(client.listProxyHosts());
    expect(error).toMatchObject({ kind: 'auth', status: 401 });
    expect(error.message).toBe(
      'Nginx Proxy Manager denied access to listing proxy hosts (HTTP 401): Token has expired',
    );
    expect(tokenRequests(npm)).toHaveLength(2);
    expect(npm.requests.filter((r) => r.path === '/api/nginx/proxy-hosts')).toHaveLength(2);
  });

  it('403 is `auth` at once: a fresh login would not grant a permission', async () => {
    const client = clientFor(npm);
    npm.failNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 403, 'Permission Denied');
    const error = await npmError(client.createProxyHost(hostInput('forbidden.example.com')));
    expect(error).toMatchObject({ kind: 'auth', status: 403 });
    expect(error.message).toMatch(/^Nginx Proxy Manager denied access to creating a proxy host \(HTTP 403\)/);
    expect(tokenRequests(npm)).toHaveLength(1);
  });

  it('a wrong password is `auth`, with NPM’s reason and without the password', async () => {
    const client = clientFor(npm, { password: 'not-the-password-42' });
    const error = await npmError(client.listProxyHosts());
    expect(error).toMatchObject({ kind: 'auth', status: 401, npmMessage: 'Invalid email or password' });
    expect(error.message).toBe('Nginx Proxy Manager refused the login (HTTP 401): Invalid email or password');
    expect(error.message).not.toContain('not-the-password-42');
    // No API call went out without a token.
    expect(npm.requests.map((r) => r.path)).toEqual(['/api/tokens']);
  });

  it('an account with two-factor authentication is `auth`, saying it is not supported', async () => {
    const twoFactor = await startFakeNpm({ twoFactor: true });
    const error = await npmError(clientFor(twoFactor).listProxyHosts(), twoFactor);
    expect(error.kind).toBe('auth');
    expect(error.message).toMatch(/two-factor .*not support/);
    expect(twoFactor.requests.map((r) => r.path)).toEqual(['/api/tokens']);
  });
});

describe('proxy hosts', () => {
  it('create, get, update, list and delete round trip', async () => {
    const client = clientFor(npm);
    const created = await client.createProxyHost(
      hostInput('app.example.com', { certificate_id: 3, ssl_forced: true, meta: { owner: 'streamgate' } }),
    );
    expect(created).toMatchObject({
      id: 1,
      domain_names: ['app.example.com'],
      forward_scheme: 'http',
      forward_host: '10.0.0.5',
      forward_port: 8080,
      certificate_id: 3,
      ssl_forced: true,
      enabled: true,
      locations: [],
      // As NPM's: the host as read before its nginx config was written.
      meta: { owner: 'streamgate' },
    });
    expect(npm.requests.at(-1)).toMatchObject({ method: 'POST', path: '/api/nginx/proxy-hosts' });

    const meta = { owner: 'streamgate', nginx_online: true, nginx_err: null };
    expect(await client.getProxyHost(created.id)).toEqual({ ...created, meta });

    const updated = await client.updateProxyHost(created.id, { forward_port: 9090 });
    expect(updated).toMatchObject({ id: created.id, domain_names: ['app.example.com'], forward_port: 9090 });
    expect(updated.meta).toMatchObject({ owner: 'streamgate' });
    expect(npm.requests.at(-1)).toMatchObject({ method: 'PUT', body: { forward_port: 9090 } });

    const other = await client.createProxyHost(hostInput('api.example.com'));
    expect(other.id).toBe(2);
    const listed = await client.listProxyHosts();
    expect(listed.map((h: NpmProxyHost) => [h.id, h.forward_port])).toEqual([
      [2, 8080],
      [1, 9090],
    ]);

    expect(await client.deleteProxyHost(created.id)).toBe(true);
    expect(npm.hosts.has(created.id)).toBe(false);
    expect(await client.getProxyHost(created.id)).toBeNull();
    expect((await client.listProxyHosts()).map((h) => h.id)).toEqual([2]);
  });

  it('hosts made by someone else are listed like ours, extra fields kept', async () => {
    const theirs = npm.addHost(hostInput('legacy.example.org', { forward_scheme: 'https', forward_port: 8443 }));
    const [listed] = await clientFor(npm).listProxyHosts();
    expect(listed).toMatchObject({ id: theirs.id, forward_scheme: 'https', forward_port: 8443 });
    // Newer NPMs send fields the stable schema does not require; the client passes them through.
    expect(listed).toHaveProperty('ssl_key_type', 'ecdsa');

    // Seeding follows NPM's rules too; only the domains are needed.
    expect(npm.addHost({ domain_names: ['seed.example.org'] })).toMatchObject({ forward_port: 80, enabled: true });
    expect(() => npm.addHost({ domain_names: ['LEGACY.example.org'] })).toThrow(/is already in use/);
  });

  it('a missing host: get is null, delete is false, update is `not_found`', async () => {
    const client = clientFor(npm);
    expect(await client.getProxyHost(999)).toBeNull();
    expect(await client.deleteProxyHost(999)).toBe(false);
    const error = await npmError(client.updateProxyHost(999, { forward_port: 81 }));
    expect(error).toMatchObject({ kind: 'not_found', status: 404, npmMessage: 'Item Not Found - 999' });
    expect(error.message).toBe(
      'Nginx Proxy Manager answered "not found" to updating proxy host #999 (HTTP 404): Item Not Found - 999',
    );
  });

  it('a body NPM’s schema refuses is `rejected` with NPM’s own message', async () => {
    const client = clientFor(npm);
    const port = await npmError(client.createProxyHost(hostInput('port.example.com', { forward_port: 70000 })));
    expect(port).toMatchObject({ kind: 'rejected', status: 400, npmMessage: 'data/forward_port must be <= 65535' });
    expect(port.message).toBe(
      'Nginx Proxy Manager rejected creating a proxy host (HTTP 400): data/forward_port must be <= 65535',
    );
    expect(isDomainTaken(port)).toBe(false);

    const scheme = await npmError(
      client.createProxyHost({ ...hostInput('s.example.com'), forward_scheme: 'ftp' as 'http' }),
    );
    expect(scheme.npmMessage).toBe('data/forward_scheme must be equal to one of the allowed values');
    const domains = await npmError(client.createProxyHost({ ...hostInput('x'), domain_names: [] }));
    expect(domains.npmMessage).toBe('data/domain_names must NOT have fewer than 1 items');
    const extra = await npmError(client.createProxyHost({ ...hostInput('e.example.com'), colour: 'red' } as never));
    expect(extra.npmMessage).toBe('data must NOT have additional properties');

    const existing = await client.createProxyHost(hostInput('ok.example.com'));
    const empty = await npmError(client.updateProxyHost(existing.id, {}));
    expect(empty).toMatchObject({ kind: 'rejected', npmMessage: 'data must NOT have fewer than 1 properties' });
    expect(npm.hosts.size).toBe(1);
  });

  it('a domain another host has is `rejected` with NPM’s message, and isDomainTaken says so', async () => {
    const client = clientFor(npm);
    npm.addHost(hostInput('x.example.com'));
    const error = await npmError(client.createProxyHost(hostInput('x.example.com')));
    expect(error).toMatchObject({ kind: 'rejected', status: 400, npmMessage: 'x.example.com is already in use' });
    expect(error.message).toBe(
      'Nginx Proxy Manager rejected creating a proxy host (HTTP 400): x.example.com is already in use',
    );
    expect(isDomainTaken(error)).toBe(true);

    const mine = await client.createProxyHost(hostInput('y.example.com'));
    const onUpdate = await npmError(client.updateProxyHost(mine.id, { domain_names: ['X.example.com'] }));
    expect(isDomainTaken(onUpdate)).toBe(true);
    // Its own domain is not "taken" by itself.
    expect((await client.updateProxyHost(mine.id, { domain_names: ['y.example.com'] })).id).toBe(mine.id);
    expect(isDomainTaken(new Error('x.example.com is already in use'))).toBe(false);
  });

  it('5xx is `server`; a redirect or a body not in NPM’s schema is `invalid_response`', async () => {
    const client = clientFor(npm);
    npm.failNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 500, 'internal error');
    const server = await npmError(client.createProxyHost(hostInput('boom.example.com')));
    expect(server).toMatchObject({ kind: 'server', status: 500 });
    expect(server.message).toBe('Nginx Proxy Manager failed creating a proxy host (HTTP 500): internal error');
    expect(npm.hosts.size).toBe(0);

    npm.failNext({ method: 'DELETE', path: /^\/api\/nginx\/proxy-hosts\/\d+$/ }, 503);
    expect(await npmError(client.deleteProxyHost(1))).toMatchObject({ kind: 'server', status: 503 });

    npm.failNext({ method: 'GET' }, 301);
    expect(await npmError(client.listProxyHosts())).toMatchObject({ kind: 'invalid_response', status: 301 });

    const host = npm.addHost(hostInput('odd.example.com'));
    npm.hosts.set(host.id, { ...host, forward_port: 'eighty' as unknown as number });
    const invalid = await npmError(client.listProxyHosts());
    expect(invalid).toMatchObject({ kind: 'invalid_response', status: 200 });
    expect(invalid.message).toMatch(
      /^Nginx Proxy Manager sent an unexpected answer to listing proxy hosts \(HTTP 200\): 0\.forward_port: /,
    );
  });
});

describe('what NPM does besides answering', () => {
  it('nginx refusing the config: the host is stored, the create answer does not say, a read and an update do', async () => {
    const client = clientFor(npm);
    npm.failNginxNext('nginx: [emerg] invalid port in "x:0"');
    const created = await client.createProxyHost(hostInput('bad.example.com'));
    // NPM answers a create with the host read before the config write: no nginx_online yet.
    expect(created.meta).toEqual({});
    const refused = { nginx_online: false, nginx_err: 'nginx: [emerg] invalid port in "x:0"' };
    expect((await client.getProxyHost(created.id))?.meta).toEqual(refused);

    npm.failNginxNext('nginx: [emerg] still wrong');
    const updated = await client.updateProxyHost(created.id, { forward_port: 81 });
    expect(updated.meta).toEqual({ nginx_online: false, nginx_err: 'nginx: [emerg] still wrong' });
    expect((await client.updateProxyHost(created.id, { forward_port: 82 })).meta).toMatchObject({ nginx_online: true });

    // A fault left unused is dropped by up(), like the others.
    npm.failNginxNext('unused');
    await npm.up();
    await client.createProxyHost(hostInput('fine.example.com'));
    expect((await client.listProxyHosts()).map((h) => h.meta.nginx_online)).toEqual([true, true]);
  });

  it('an update keeps what it does not send; a meta sent replaces the stored one', async () => {
    const client = clientFor(npm);
    const host = await client.createProxyHost(hostInput('keep.example.com', { meta: { a: 1 }, ssl_forced: true }));
    const ported = await client.updateProxyHost(host.id, { forward_port: 9000 });
    expect(ported).toMatchObject({ domain_names: ['keep.example.com'], ssl_forced: true, forward_port: 9000 });
    expect(ported.meta).toEqual({ a: 1, nginx_online: true, nginx_err: null });
    expect((await client.updateProxyHost(host.id, { meta: { b: 2 } })).meta).toEqual({
      b: 2,
      nginx_online: true,
      nginx_err: null,
    });
    // A disabled host gets no nginx config, so nothing is added to what was sent.
    expect((await client.updateProxyHost(host.id, { enabled: false, meta: { c: 3 } })).meta).toEqual({ c: 3 });
  });

  it('a seeded host can look old; one created through the API is new', async () => {
    const old = npm.addHost({ domain_names: ['old.example.com'], created_on: '2020-01-02T03:04:05.000Z' });
    expect(old).toMatchObject({ created_on: '2020-01-02T03:04:05.000Z', modified_on: '2020-01-02T03:04:05.000Z' });
    const before = Date.now();
    const fresh = await clientFor(npm).createProxyHost(hostInput('new.example.com'));
    expect(Date.parse(fresh.created_on)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('locations are checked against NPM’s schema', async () => {
    const client = clientFor(npm);
    const root = { path: '/', forward_scheme: 'http', forward_host: '10.0.0.9/app', forward_port: 8080 } as const;
    const host = await client.createProxyHost(hostInput('loc.example.com', { locations: [root] }));
    expect(host.locations).toEqual([root]);
    const noPath = await npmError(
      client.createProxyHost(hostInput('l2.example.com', { locations: [{ ...root, path: undefined as never }] })),
    );
    expect(noPath.npmMessage).toBe("data/locations/0 must have required property 'path'");
    const extra = await npmError(
      client.updateProxyHost(host.id, { locations: [{ ...root, colour: 'red' } as typeof root] }),
    );
    expect(extra.npmMessage).toBe('data/locations/0 must NOT have additional properties');
  });
});

describe('no answer', () => {
  it('NPM down is `unreachable` from the refusal, not a timeout; up again, calls work', async () => {
    const warm = clientFor(npm, { timeoutMs: 60_000 });
    await warm.listProxyHosts();
    await npm.down();
    // A fresh client connects and is refused.
    const refused = await npmError(clientFor(npm, { timeoutMs: 60_000 }).listProxyHosts());
    expect(refused).toMatchObject({ kind: 'unreachable', status: null });
    expect(refused.message).toBe(
      `Nginx Proxy Manager at ${npm.url} is unreachable while logging in: connection refused (ECONNREFUSED)`,
    );
    // One with a pooled connection may first find that connection closed; either way no timeout.
    const pooled = await npmError(warm.createProxyHost(hostInput('down.example.com')));
    expect(pooled).toMatchObject({ kind: 'unreachable', status: null });
    expect(pooled.message).toMatch(
      /unreachable while creating a proxy host: connection (refused|closed by the other side)/,
    );

    await npm.up();
    expect((await warm.createProxyHost(hostInput('down.example.com'))).domain_names).toEqual(['down.example.com']);
  });

  it('a request that hangs past timeoutMs is `unreachable`; the next one works', async () => {
    const client = clientFor(npm, { timeoutMs: 150 });
    await client.listProxyHosts();
    npm.hangNext({ method: 'GET', path: '/api/nginx/proxy-hosts' });
    const error = await npmError(client.listProxyHosts());
    expect(error).toMatchObject({ kind: 'unreachable', status: null });
    expect(error.message).toBe(
      `Nginx Proxy Manager at ${npm.url} is unreachable while listing proxy hosts: no answer within 150 ms`,
    );
    expect(await client.listProxyHosts()).toEqual([]);
  });

  it('a login that hangs is `unreachable` too', async () => {
    const client = clientFor(npm, { timeoutMs: 150 });
    npm.hangNext({ path: '/api/tokens' });
    const error = await npmError(client.getProxyHost(1));
    expect(error.kind).toBe('unreachable');
    expect(error.message).toMatch(/while logging in: no answer within 150 ms$/);
  });
});

describe('secrets', () => {
  it('the password and the token never appear in a message, even when NPM echoes them', async () => {
    const client = clientFor(npm);
    await client.listProxyHosts();
    const [token] = bearerTokens(npm);
    expect(token).toBeDefined();
    npm.failNext({ method: 'POST' }, 400, `bad secret ${npm.password} for token ${token}`);
    const error = await npmError(client.createProxyHost(hostInput('echo.example.com')));
    expect(error.message).toBe(
      'Nginx Proxy Manager rejected creating a proxy host (HTTP 400): bad secret *** for token ***',
    );
    expect(error.npmMessage).toBe('bad secret *** for token ***');
  });
});

describe('mayHaveApplied', () => {
  it('false when the request never left: connection refused', async () => {
    // No keep-alive: the create opens a new connection, refused, after a login that worked.
    const oneShot = dispose(new Agent({ pipelining: 0 }), (a) => a.close());
    const client = clientFor(npm, { dispatcher: oneShot, timeoutMs: 60_000 });
    await client.listProxyHosts();
    await npm.down();
    const refused = await npmError(client.createProxyHost(hostInput('refused.example.com')));
    expect(refused).toMatchObject({ kind: 'unreachable', mayHaveApplied: false });
    expect(refused.message).toMatch(/while creating a proxy host: connection refused \(ECONNREFUSED\)$/);
  });

  it('false when the login fails: the call itself was never sent', async () => {
    await npm.down();
    const error = await npmError(clientFor(npm).deleteProxyHost(1));
    expect(error).toMatchObject({ kind: 'unreachable', mayHaveApplied: false });
    expect(error.message).toMatch(/while logging in/);
  });

  it('false for every 4xx', async () => {
    const client = clientFor(npm);
    npm.failNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 400, 'bad');
    expect(await npmError(client.createProxyHost(hostInput('a.example.com')))).toMatchObject({
      kind: 'rejected',
      mayHaveApplied: false,
    });
    npm.failNext({ method: 'PUT' }, 403);
    expect(await npmError(client.updateProxyHost(1, { forward_port: 1 }))).toMatchObject({
      kind: 'auth',
      mayHaveApplied: false,
    });
    expect(await npmError(client.updateProxyHost(99, { forward_port: 1 }))).toMatchObject({
      kind: 'not_found',
      mayHaveApplied: false,
    });
  });

  it('true when our deadline passes with no answer', async () => {
    const client = clientFor(npm, { timeoutMs: 150 });
    await client.listProxyHosts();
    npm.hangNext({ method: 'POST', path: '/api/nginx/proxy-hosts' });
    const error = await npmError(client.createProxyHost(hostInput('slow.example.com')));
    expect(error).toMatchObject({ kind: 'unreachable', mayHaveApplied: true });
    expect(error.message).toMatch(/no answer within 150 ms$/);
  });

  it('true when the connection breaks after the request went out', async () => {
    const client = clientFor(npm, { timeoutMs: 60_000 });
    await client.listProxyHosts();
    npm.hangNext({ method: 'DELETE' });
    const pending = npmError(client.deleteProxyHost(1));
    await vi.waitFor(() => expect(npm.requests.at(-1)?.method).toBe('DELETE'));
    await npm.down();
    expect(await pending).toMatchObject({ kind: 'unreachable', mayHaveApplied: true });
  });

  it('true when the answer is lost after NPM carried the request out', async () => {
    const client = clientFor(npm);
    npm.loseAnswerNext({ method: 'POST', path: '/api/nginx/proxy-hosts' });
    const error = await npmError(client.createProxyHost(hostInput('lost.example.com')));
    expect(error).toMatchObject({ kind: 'unreachable', mayHaveApplied: true });
    expect([...npm.hosts.values()].map((h) => h.domain_names)).toEqual([['lost.example.com']]);
  });

  it('true for a 5xx and for a 2xx answer not in NPM’s schema', async () => {
    const client = clientFor(npm);
    npm.failNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 500);
    expect(await npmError(client.createProxyHost(hostInput('b.example.com')))).toMatchObject({
      kind: 'server',
      mayHaveApplied: true,
    });
    const host = npm.addHost(hostInput('c.example.com'));
    npm.hosts.set(host.id, { ...host, forward_port: 'eighty' as unknown as number });
    expect(await npmError(client.updateProxyHost(host.id, { enabled: true }))).toMatchObject({
      kind: 'invalid_response',
      mayHaveApplied: true,
    });
  });

  it('false for a read, whatever became of it', async () => {
    const client = clientFor(npm, { timeoutMs: 150 });
    await client.listProxyHosts();
    npm.hangNext({ method: 'GET' });
    expect(await npmError(client.listProxyHosts())).toMatchObject({ kind: 'unreachable', mayHaveApplied: false });
    npm.failNext({ method: 'GET' }, 500);
    expect(await npmError(client.getProxyHost(1))).toMatchObject({ kind: 'server', mayHaveApplied: false });
  });

  it('kept when a secret is taken out of the message', async () => {
    const client = clientFor(npm);
    npm.failNext({ method: 'POST', path: '/api/nginx/proxy-hosts' }, 502, `echo ${npm.password}`);
    const error = await npmError(client.createProxyHost(hostInput('d.example.com')));
    expect(error).toMatchObject({ npmMessage: 'echo ***', mayHaveApplied: true });
  });
});

describe('lifetime', () => {
  it('no timer outlives a call', async () => {
    const client = clientFor(npm, { timeoutMs: 60_000 });
    await client.listProxyHosts();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    await client.createProxyHost(hostInput('t.example.com'));
    await client.listProxyHosts();
    expect(timers()).toBe(before);
  });

  it('close() closes the agent the client made; later calls fail saying so, having changed nothing', async () => {
    const own = new NpmClient({ url: npm.url, email: npm.email, password: npm.password });
    await own.listProxyHosts();
    await own.close();
    const error = await npmError(own.createProxyHost(hostInput('late.example.com')));
    expect(error).toMatchObject({ kind: 'unreachable', status: null, mayHaveApplied: false });
    expect(error.message).toBe(
      `Nginx Proxy Manager at ${npm.url} is unreachable while creating a proxy host: the client is closed`,
    );
    expect(npm.requests.filter((r) => r.method === 'POST' && r.path === '/api/nginx/proxy-hosts')).toHaveLength(0);
  });

  it('close() leaves a dispatcher that was passed in open', async () => {
    const shared = dispose(new Agent(), (a) => a.close());
    const first = new NpmClient({ url: npm.url, email: npm.email, password: npm.password, dispatcher: shared });
    await first.listProxyHosts();
    await first.close();
    expect(await npmError(first.listProxyHosts())).toMatchObject({ kind: 'unreachable', mayHaveApplied: false });
    const second = clientFor(npm, { dispatcher: shared });
    expect(await second.listProxyHosts()).toEqual([]);
  });

  it('neither JSON.stringify nor util.inspect shows the credentials or the token', async () => {
    const client = clientFor(npm);
    await client.listProxyHosts();
    const shown = [JSON.stringify(client), inspect(client, { showHidden: true, depth: Number.POSITIVE_INFINITY })];
    const [token] = bearerTokens(npm);
    expect(token).toBeDefined();
    for (const text of shown) {
      for (const secret of [npm.password, npm.email, token as string]) expect(text).not.toContain(secret);
    }
  });
});
