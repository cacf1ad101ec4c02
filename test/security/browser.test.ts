import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../helpers/app.js';

/**
 * What a browser (or an attacker's page in one) can and cannot do: errors never carry internals,
 * no CORS unless configured, no form posts, no cross-origin sockets, and GraphiQL only when on.
 */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { NODE_ENV: 'development', CORS_ORIGINS: 'https://ops.example.com' } });
});

/** The HTTP status a WebSocket upgrade to `path` gets with `headers` (101 when it opens). */
function upgradeStatus(app: TestApp, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${app.url.replace('http', 'ws')}${path}`, ['graphql-transport-ws'], { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

describe('errors never leak', () => {
  let broken: TestApp;
  afterAll(async () => {
    await broken?.app.stop();
  });

  it('masks an unexpected error in development mode too: no stack, no file paths, no Prisma text', async () => {
    broken = await startTestApp({ env: { NODE_ENV: 'development' } });
    await broken.db.prisma.$executeRawUnsafe('DROP TABLE "Settings" CASCADE');
    const res = await broken.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ settings { healthCheckIntervalSeconds } }' }),
    });
    const text = await res.text();
    expect(JSON.parse(text).errors[0].message).toBe('Unexpected error.');
    expect(text).not.toMatch(/stack|prisma|originalError|\/src\/|\.ts\b/i);
    expect(text).not.toContain('Settings'); // the table's name (the field is `settings`)
  });

  it('EXPOSE_ERRORS=true shows the details (local debugging)', async () => {
    const exposed = await startTestApp({ env: { NODE_ENV: 'development', EXPOSE_ERRORS: 'true' } });
    await exposed.db.prisma.$executeRawUnsafe('DROP TABLE "Settings" CASCADE');
    const res = await exposed.gql('{ settings { healthCheckIntervalSeconds } }');
    expect(JSON.stringify(res.errors)).toMatch(/Settings/);
  });

  it('answers a malformed JSON body with 400 and a fixed message that does not echo the body', async () => {
    for (const body of ['{"query": "{ __typename }"', 'not json at all SECRET-123', '{"query":']) {
      const res = await t.fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const text = await res.text();
      expect([body, res.status]).toEqual([body, 400]);
      expect(text).not.toContain('SECRET');
      expect(text).not.toContain('query');
      expect(JSON.parse(text).errors[0].extensions.code).toBe('BAD_REQUEST');
    }
  });
});

describe('CORS', () => {
  const preflight = (app: TestApp, origin: string) =>
    fetch(`${app.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });

  it('sends no CORS headers to an origin that is not listed, and never allows credentials', async () => {
    const evil = await preflight(t, 'https://evil.example');
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const post = await t.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(post.headers.get('access-control-allow-origin')).toBeNull();
    expect(post.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('allows exactly a listed origin, without credentials', async () => {
    const ops = await preflight(t, 'https://ops.example.com');
    expect(ops.headers.get('access-control-allow-origin')).toBe('https://ops.example.com');
    expect(ops.headers.get('access-control-allow-credentials')).not.toBe('true');
    expect(
      (await preflight(t, 'https://ops.example.com.evil.example')).headers.get('access-control-allow-origin'),
    ).toBeNull();
  });

  it('sends none at all when CORS_ORIGINS is unset', async () => {
    const plain = await startTestApp();
    const res = await preflight(plain, 'https://ops.example.com');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('CSRF: only JSON bodies run operations', () => {
  it.each([
    [
      'application/x-www-form-urlencoded',
      `query=${encodeURIComponent('mutation { createSession(clientId: "5b3c0a9e-3f0e-4d8a-9d3c-1f2e3a4b5c6d") { session { id } } }')}`,
    ],
    [
      'text/plain',
      JSON.stringify({
        query: 'mutation { createSession(clientId: "5b3c0a9e-3f0e-4d8a-9d3c-1f2e3a4b5c6d") { session { id } } }',
      }),
    ],
    [
      'multipart/form-data; boundary=x',
      '--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"query":"mutation { createSession(clientId: \\"5b3c0a9e-3f0e-4d8a-9d3c-1f2e3a4b5c6d\\") { session { id } } }"}\r\n--x--\r\n',
    ],
  ])('refuses %s with 415 and runs nothing', async (type, body) => {
    const before = await t.db.prisma.session.count();
    const res = await t.fetch('/graphql', { method: 'POST', headers: { 'content-type': type }, body });
    expect(res.status).toBe(415);
    expect((await res.json()).errors[0].extensions.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await t.db.prisma.session.count()).toBe(before);
  });

  it('still takes JSON (with a charset) and GET queries', async () => {
    const json = await t.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(json.status).toBe(200);
    const get = await t.fetch(`/graphql?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { accept: 'application/json' },
    });
    expect(get.status).toBe(200);
  });
});

describe('sockets from browser pages', () => {
  it('refuses a graphql-ws or relay upgrade from an origin that is not listed (403)', async () => {
    expect(await upgradeStatus(t, '/graphql', { origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(t, `/ws/stream/${crypto.randomUUID()}/op`, { origin: 'https://evil.example' })).toBe(
      403,
    );
  });

  it('accepts a listed origin, and clients that send no Origin', async () => {
    expect(await upgradeStatus(t, '/graphql', { origin: 'https://ops.example.com' })).toBe(101);
    expect(await upgradeStatus(t, '/graphql', {})).toBe(101);
  });
});

describe('GraphiQL', () => {
  const page = (app: TestApp, headers: Record<string, string> = {}) =>
    fetch(`${app.url}/graphql`, { headers: { accept: 'text/html', ...headers } });

  it('is served compressed, with an ETag and caching, and 304 when the browser has it', async () => {
    const res = await page(t, { 'accept-encoding': 'gzip' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const etag = res.headers.get('etag');
    expect(etag).toBeTruthy();
    // fetch decodes gzip itself; the wire size is what matters, so read it raw below.
    expect(await res.text()).toContain('StreamGate');
    const raw = await new Promise<{ encoding?: string; length: number; body: Buffer }>((resolve, reject) => {
      import('node:http').then(({ get }) =>
        get(`${t.url}/graphql`, { headers: { accept: 'text/html', 'accept-encoding': 'gzip' } }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () =>
            resolve({
              encoding: r.headers['content-encoding'],
              length: Number(r.headers['content-length']),
              body: Buffer.concat(chunks),
            }),
          );
        }).on('error', reject),
      );
    });
    expect(raw.encoding).toBe('gzip');
    const html = gunzipSync(raw.body);
    expect(raw.length).toBeLessThan(html.length / 3);
    const cached = await page(t, { 'if-none-match': etag ?? '' });
    expect(cached.status).toBe(304);
  });

  it('is off with GRAPHIQL=false, and by default in production', async () => {
    for (const env of [{ GRAPHIQL: 'false' }, { NODE_ENV: 'production' }] as Record<string, string>[]) {
      const app = await startTestApp({ env });
      const res = await page(app);
      expect((res.headers.get('content-type') ?? '').includes('text/html')).toBe(false);
    }
    const on = await startTestApp({ env: { NODE_ENV: 'production', GRAPHIQL: 'true' } });
    expect((await page(on)).headers.get('content-type')).toMatch(/text\/html/);
  });
});
