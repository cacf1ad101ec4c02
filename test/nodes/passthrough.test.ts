import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { closedPort, type EchoBody, type FakeNode, startFakeNode } from '../helpers/fake-node.js';
import { dispose } from '../helpers/leftovers.js';

/**
 * `ANY /proxy/{streamers|caches|slbs}/{id}/{path…}` over real sockets: a real StreamGate app in
 * front of a small real node server (test/helpers/fake-node.ts). Requests go out through an undici
 * Agent (or node:http where undici refuses a header) so that the path reaches us unnormalised.
 */

type Kind = 'streamers' | 'caches' | 'slbs';

/** Longest wait for something a test is waiting on; only reached when the behaviour is broken. */
const WAIT_MS = 5_000;

// Our own client: an Agent sends `path` exactly as given (fetch() would normalise it).
const client = dispose(new Agent({ keepAliveTimeout: 1_000 }), (a) => a.close());

interface Sent {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** node:http only: the status line's reason phrase and the headers as they were on the wire. */
  statusMessage?: string;
  rawHeaders?: string[];
}

async function send(
  app: TestApp,
  path: string,
  opts: {
    method?: Dispatcher.HttpMethod;
    headers?: Record<string, string>;
    body?: Dispatcher.DispatchOptions['body'];
    token?: string | null;
  } = {},
): Promise<Sent> {
  const token = opts.token === undefined ? app.token : opts.token;
  const res = await client.request({
    origin: app.url,
    path,
    method: opts.method ?? 'GET',
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...opts.headers },
    body: opts.body ?? null,
  });
  return {
    status: res.statusCode,
    headers: res.headers as IncomingHttpHeaders,
    body: Buffer.from(await res.body.arrayBuffer()),
  };
}

/** node:http, for headers undici refuses to send (Connection lists, Keep-Alive, Upgrade, …). */
function sendRaw(app: TestApp, path: string, headers: Record<string, string>): Promise<Sent> {
  const { hostname, port } = new URL(app.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method: 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          statusMessage: res.statusMessage,
          rawHeaders: res.rawHeaders,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const json = <T = unknown>(sent: Sent) => JSON.parse(sent.body.toString()) as T;

/** Fails with a clear message instead of hanging when something never happens. */
function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Polls `value` until it stops changing for a few hundred ms (a stalled stream); returns it. */
async function untilStable(value: () => number): Promise<number> {
  const deadline = performance.now() + WAIT_MS;
  let last = -1;
  let unchangedSince = performance.now();
  while (performance.now() < deadline) {
    const now = value();
    if (now !== last) {
      last = now;
      unchangedSince = performance.now();
    } else if (performance.now() - unchangedSince >= 300) {
      return now;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`still moving after ${WAIT_MS} ms (at ${last}): nothing is holding it back`);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Registers a node of the given kind through GraphQL; returns its id. */
async function createNode(app: TestApp, kind: Kind, endpoint: { host: string; apiPort: number }): Promise<string> {
  const name = `n-${randomUUID().slice(0, 8)}`;
  const mutation = {
    streamers: 'mutation($input: CreateStreamerInput!) { created: createStreamer(input: $input) { id } }',
    caches: 'mutation($input: CreateNodeInput!) { created: createCacheNode(input: $input) { id } }',
    slbs: 'mutation($input: CreateNodeInput!) { created: createSlbNode(input: $input) { id } }',
  }[kind];
  const input = { name, ...endpoint, ...(kind === 'streamers' ? { httpPort: 8080 } : {}) };
  const res = await app.gql<{ created: { id: string } }, { input: typeof input }>(mutation, { input });
  expect(res.errors).toBeUndefined();
  return res.data!.created.id;
}

describe('passthrough /proxy/{kind}/{id}/{path…}', () => {
  let app: TestApp;
  let node: FakeNode;
  const ids = {} as Record<Kind, string>;

  beforeAll(async () => {
    [app, node] = await Promise.all([startTestApp(), startFakeNode()]);
    for (const kind of ['streamers', 'caches', 'slbs'] as const) {
      ids[kind] = await createNode(app, kind, { host: node.host, apiPort: node.port });
    }
  });
  beforeEach(() => {
    node.requests.length = 0;
  });
  afterEach(() => {
    node.override = undefined;
  });

  describe('forwarding', () => {
    it.each(['streamers', 'caches', 'slbs'] as const)('reaches the node of kind %s', async (kind) => {
      const sent = await send(app, `/proxy/${kind}/${ids[kind]}/echo/${kind}`);
      expect(sent.status).toBe(200);
      expect(json<EchoBody>(sent)).toMatchObject({ method: 'GET', url: `/echo/${kind}` });
      expect(node.requests.map((r) => r.url)).toEqual([`/echo/${kind}`]);
    });

    it('forwards a node created directly in the database, and an empty path as /', async () => {
      const { id } = await app.db.prisma.node.create({
        data: { kind: 'SLB', name: 'direct', host: node.host, apiPort: node.port },
      });
      expect((await send(app, `/proxy/slbs/${id}`)).status).toBe(404); // the fake node's own 404
      expect((await send(app, `/proxy/slbs/${id}?q=1`)).status).toBe(404);
      expect(node.requests.map((r) => r.url)).toEqual(['/', '/?q=1']);
    });

    it('keeps path and query byte-exact: encoded characters, repeated and empty keys', async () => {
      const raw = '/a%2Fb/c?x=1&x=2&y=%20%2B&empty=';
      const odd = "/x/%2e%2E/y%3F;p=1/./z//?a=%E2%82%AC&a&=&b=~!*'()";
      const sent = await send(app, `/proxy/caches/${ids.caches}${raw}`);
      await send(app, `/proxy/caches/${ids.caches}${odd}`);
      expect(sent.status).toBe(404); // the node's answer: it has no such path
      expect(node.requests.map((r) => r.url)).toEqual([raw, odd]);
    });

    it.each(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PURGE'] as const)(
      'forwards the %s method',
      async (method) => {
        const sent = await send(app, `/proxy/streamers/${ids.streamers}/echo`, { method });
        expect(sent.status).toBe(200);
        expect(json<EchoBody>(sent).method).toBe(method);
      },
    );

    it('forwards HEAD and returns the head without a body', async () => {
      const sent = await send(app, `/proxy/caches/${ids.caches}/echo`, { method: 'HEAD' });
      expect(sent.status).toBe(200);
      expect(sent.headers['x-node-header']).toBe('from-node');
      expect(sent.body.length).toBe(0);
      expect(node.requests[0]?.method).toBe('HEAD');
    });
  });

  describe('bodies', () => {
    const payload = randomBytes(5 * 1024 * 1024 + 123);
    const chunked = () => Readable.from(chunks(payload, 64 * 1024));

    it('streams a request body of a few MB to the node unchanged (chunked)', async () => {
      const sent = await send(app, `/proxy/caches/${ids.caches}/echo`, { method: 'POST', body: chunked() });
      expect(sent.status).toBe(200);
      expect(json<EchoBody>(sent)).toMatchObject({ bodyBytes: payload.length, bodySha256: sha256(payload) });
      expect(node.requests[0]?.headers['transfer-encoding']).toBe('chunked');
    });

    it('streams a request body with a Content-Length unchanged, and keeps the length', async () => {
      const sent = await send(app, `/proxy/slbs/${ids.slbs}/echo`, {
        method: 'PUT',
        headers: { 'content-length': String(payload.length), 'content-type': 'application/octet-stream' },
        body: chunked(),
      });
      expect(json<EchoBody>(sent)).toMatchObject({ bodyBytes: payload.length, bodySha256: sha256(payload) });
      expect(node.requests[0]?.headers['content-length']).toBe(String(payload.length));
      expect(node.requests[0]?.headers['content-type']).toBe('application/octet-stream');
    });

    it('streams a response body of a few MB back unchanged', async () => {
      node.override = (req, res) => {
        if (req.url !== '/download') return false;
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        Readable.from(chunks(payload, 100_000)).pipe(res);
        return true;
      };
      const sent = await send(app, `/proxy/streamers/${ids.streamers}/download`);
      expect(sent.status).toBe(200);
      expect(sent.body.length).toBe(payload.length);
      expect(sha256(sent.body)).toBe(sha256(payload));
    });
  });

  describe('raw answers', () => {
    it("returns the node's status, headers and body as they are, with no envelope", async () => {
      const body = '{"not":"wrapped"} I am a teapot';
      node.override = (req, res) => {
        if (req.url !== '/teapot') return false;
        res.writeHead(418, {
          'content-type': 'text/x-tea',
          'x-custom': 'earl grey',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return true;
      };
      const sent = await send(app, `/proxy/caches/${ids.caches}/teapot`);
      expect(sent.status).toBe(418);
      expect(sent.headers['content-type']).toBe('text/x-tea');
      expect(sent.headers['x-custom']).toBe('earl grey');
      expect(sent.headers['content-length']).toBe(String(Buffer.byteLength(body)));
      expect(sent.body.toString()).toBe(body);
    });

    it("keeps the node's reason phrase, header case, order and repeated headers", async () => {
      node.override = (req, res) => {
        if (req.url !== '/raw') return false;
        res.writeHead(299, 'Quite Unusual', [
          'X-Mixed-Case',
          'Value',
          'X-Repeated',
          'one',
          'x-repeated',
          'two',
          'Content-Length',
          '0',
        ]);
        res.end();
        return true;
      };
      const sent = await sendRaw(app, `/proxy/slbs/${ids.slbs}/raw`, { authorization: `Bearer ${app.token}` });
      expect(sent.status).toBe(299);
      expect(sent.statusMessage).toBe('Quite Unusual');
      const pairs = (sent.rawHeaders ?? []).flatMap((v, i, all) => (i % 2 ? [] : [`${v}: ${all[i + 1]}`]));
      // (x-content-type-options is ours, appended after the node's headers.)
      expect(pairs.filter((p) => /^x-/i.test(p))).toEqual([
        'X-Mixed-Case: Value',
        'X-Repeated: one',
        'x-repeated: two',
        'x-content-type-options: nosniff',
      ]);
    });

    it("returns the node's final answer after informational ones (103 Early Hints)", async () => {
      node.override = (req, res) => {
        if (req.url !== '/hints') return false;
        res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style' }, () => {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('final');
        });
        return true;
      };
      const sent = await send(app, `/proxy/caches/${ids.caches}/hints`);
      expect(sent.status).toBe(200);
      expect(sent.body.toString()).toBe('final');
    });

    it("passes the node's errors through as they are (no 502 for a 5xx answer)", async () => {
      node.override = (req, res) => {
        if (req.url !== '/broken') return false;
        res.writeHead(503, { 'content-type': 'text/plain' }).end('node says no');
        return true;
      };
      const sent = await send(app, `/proxy/slbs/${ids.slbs}/broken`);
      expect(sent.status).toBe(503);
      expect(sent.body.toString()).toBe('node says no');
    });
  });

  describe('headers', () => {
    it('adds X-Forwarded-For to the chain the caller sent, and sets its own -Proto and -Host', async () => {
      const sent = await send(app, `/proxy/caches/${ids.caches}/echo`, {
        headers: {
          'x-forwarded-for': '203.0.113.7',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'spoofed.example',
        },
      });
      const seen = json<EchoBody>(sent).headers;
      expect(seen['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
      expect(seen['x-forwarded-proto']).toBe('http');
      expect(seen['x-forwarded-host']).toBe(new URL(app.url).host);
    });

    it('does not forward hop-by-hop headers, those named in Connection, our Authorization or cookies', async () => {
      const sent = await sendRaw(app, `/proxy/caches/${ids.caches}/echo`, {
        authorization: `Bearer ${app.token}`,
        cookie: 'sg_session=secret',
        connection: 'keep-alive, X-Hop-Custom',
        'x-hop-custom': 'per-connection',
        'keep-alive': 'timeout=30',
        te: 'trailers',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
        'proxy-connection': 'keep-alive',
        'x-end-to-end': 'kept',
        accept: 'application/x-node',
      });
      expect(sent.status).toBe(200);
      const seen = json<EchoBody>(sent).headers;
      // undici sends its own `connection: keep-alive` for its own hop; nothing of ours may be in it.
      expect(seen.connection ?? '').not.toMatch(/x-hop-custom/i);
      for (const name of [
        'authorization',
        'cookie',
        'x-hop-custom',
        'keep-alive',
        'te',
        'upgrade',
        'proxy-authorization',
        'proxy-connection',
      ]) {
        expect(seen, name).not.toHaveProperty(name);
      }
      // What the node sees of the secrets anywhere in its request, not just under their names.
      const rawHeaders = node.requests[0]?.rawHeaders.join('\n') ?? '';
      expect(rawHeaders).not.toContain(app.token);
      expect(rawHeaders).not.toContain('sg_session');
      // End-to-end headers do arrive, and the Host is the node's.
      expect(seen['x-end-to-end']).toBe('kept');
      expect(seen.accept).toBe('application/x-node');
      expect(seen.host).toBe(`${node.host}:${node.port}`);
    });

    it("does not return the node's hop-by-hop response headers", async () => {
      node.override = (req, res) => {
        if (req.url !== '/hops') return false;
        res.writeHead(200, {
          connection: 'keep-alive, X-Upstream-Hop',
          'x-upstream-hop': 'between node and proxy',
          'keep-alive': 'timeout=77, max=9',
          'proxy-authenticate': 'Basic realm="node"',
          'x-end-to-end': 'kept',
          'content-length': 2,
        });
        res.end('ok');
        return true;
      };
      const sent = await send(app, `/proxy/caches/${ids.caches}/hops`);
      expect(sent.status).toBe(200);
      expect(sent.headers['x-end-to-end']).toBe('kept');
      expect(sent.headers).not.toHaveProperty('x-upstream-hop');
      expect(sent.headers).not.toHaveProperty('proxy-authenticate');
      expect(String(sent.headers['keep-alive'] ?? '')).not.toContain('77');
      expect(sent.body.toString()).toBe('ok');
    });
    it('serves what a node says as untrusted: no Set-Cookie, nosniff, a sandbox CSP (the node’s own replaced)', async () => {
      node.override = (req, res) => {
        if (req.url !== '/page') return false;
        res.writeHead(200, {
          'content-type': 'text/html',
          'set-cookie': ['session=stolen; Path=/', 'other=1'],
          'x-content-type-options': 'off',
          'content-security-policy': "script-src 'unsafe-inline'",
          'x-end-to-end': 'kept',
        });
        res.end('<script>alert(1)</script>');
        return true;
      };
      const sent = await send(app, `/proxy/caches/${ids.caches}/page`);
      expect(sent.status).toBe(200);
      expect(sent.headers).not.toHaveProperty('set-cookie');
      expect(sent.headers['x-content-type-options']).toBe('nosniff');
      expect(sent.headers['content-security-policy']).toBe('sandbox');
      expect(sent.headers['x-end-to-end']).toBe('kept');
    });
  });

  describe('streaming, no buffering', () => {
    it('delivers the first chunk of a response while the node still holds the response open', async () => {
      const release = deferred();
      node.override = (req, res) => {
        if (req.url !== '/hold') return false;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        release.promise.then(() => res.end('second'));
        return true;
      };
      const res = await within(
        client.request({
          origin: app.url,
          path: `/proxy/streamers/${ids.streamers}/hold`,
          method: 'GET',
          headers: { authorization: `Bearer ${app.token}` },
        }),
        'the response head arriving before the node finished',
      );
      expect(res.statusCode).toBe(200);
      const body = res.body[Symbol.asyncIterator]();
      const first = await within(body.next(), 'the first chunk arriving before the node finished');
      expect(Buffer.from(first.value as Uint8Array).toString()).toBe('first;');
      release.resolve();
      let rest = '';
      for (let next = await body.next(); !next.done; next = await body.next()) rest += Buffer.from(next.value);
      expect(rest).toBe('second');
    });

    it('delivers the first chunk of a request body to the node before the client has finished sending', async () => {
      const firstChunkAtNode = deferred<string>();
      node.override = (req, res) => {
        if (req.url !== '/upload') return false;
        let received = '';
        req.on('data', (c: Buffer) => {
          if (received === '') firstChunkAtNode.resolve(c.toString());
          received += c.toString();
        });
        req.on('end', () => res.writeHead(200).end(received));
        return true;
      };
      const body = new PassThrough();
      const answer = send(app, `/proxy/caches/${ids.caches}/upload`, { method: 'POST', body });
      body.write('first;');
      expect(await within(firstChunkAtNode.promise, 'the first chunk reaching the node while the client sends')).toBe(
        'first;',
      );
      body.end('second');
      const sent = await answer;
      expect(sent.status).toBe(200);
      expect(sent.body.toString()).toBe('first;second');
    });

    it('survives a client that goes away mid-response, and closes the request to the node', async () => {
      const nodeSideClosed = deferred();
      node.override = (req, res) => {
        if (req.url !== '/endless') return false;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('chunk;');
        res.once('close', () => nodeSideClosed.resolve());
        return true;
      };
      const abort = new AbortController();
      const res = await client.request({
        origin: app.url,
        path: `/proxy/slbs/${ids.slbs}/endless`,
        method: 'GET',
        headers: { authorization: `Bearer ${app.token}` },
        signal: abort.signal,
      });
      const body = res.body[Symbol.asyncIterator]();
      await within(body.next(), 'the first chunk');
      abort.abort();
      await within(nodeSideClosed.promise, "the node's request being closed after the client left");

      const next = await send(app, `/proxy/slbs/${ids.slbs}/echo`);
      expect(next.status).toBe(200);
      expect((await app.fetch('/health')).status).toBe(200);
    });

    it('stops the node from writing while the client does not read (backpressure, no buffering)', async () => {
      const total = 128 * 1024 * 1024;
      const chunk = Buffer.alloc(64 * 1024, 7);
      let produced = 0;
      node.override = (req, res) => {
        if (req.url !== '/firehose') return false;
        res.writeHead(200, { 'content-length': total });
        function* firehose() {
          for (; produced < total; produced += chunk.length) yield chunk;
        }
        Readable.from(firehose()).pipe(res);
        return true;
      };
      const res = await client.request({
        origin: app.url,
        path: `/proxy/streamers/${ids.streamers}/firehose`,
        method: 'GET',
        headers: { authorization: `Bearer ${app.token}` },
      });
      // The client reads nothing: only socket buffers may fill, far from the whole body.
      const stalledAt = await untilStable(() => produced);
      expect(stalledAt).toBeLessThan(total / 2);
      let received = 0;
      for await (const c of res.body) received += (c as Buffer).length;
      expect(received).toBe(total);
    });

    it('stops the client from sending while the node does not read (backpressure, no buffering)', async () => {
      const total = 128 * 1024 * 1024;
      const chunk = Buffer.alloc(64 * 1024, 7);
      let pulled = 0;
      const nodeRequest = deferred<IncomingMessage>();
      node.override = (req, res) => {
        if (req.url !== '/sink') return false;
        req.pause();
        let bytes = 0;
        req.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        req.on('end', () => res.writeHead(200).end(String(bytes)));
        nodeRequest.resolve(req);
        return true;
      };
      function* upload() {
        for (; pulled < total; pulled += chunk.length) yield chunk;
      }
      const answer = send(app, `/proxy/caches/${ids.caches}/sink`, {
        method: 'POST',
        headers: { 'content-length': String(total) },
        body: Readable.from(upload()),
      });
      const req = await within(nodeRequest.promise, 'the upload reaching the node');
      const stalledAt = await untilStable(() => pulled);
      expect(stalledAt).toBeLessThan(total / 2);
      req.resume();
      const sent = await answer;
      expect(sent.body.toString()).toBe(String(total));
    });

    it('closes the request to the node when the client goes away before the node answered', async () => {
      const nodeSideClosed = deferred();
      const arrived = deferred();
      node.override = (req, res) => {
        if (req.url !== '/slow') return false;
        res.once('close', () => nodeSideClosed.resolve());
        arrived.resolve(); // and never answers
        return true;
      };
      const abort = new AbortController();
      const answer = client
        .request({
          origin: app.url,
          path: `/proxy/caches/${ids.caches}/slow`,
          method: 'GET',
          headers: { authorization: `Bearer ${app.token}` },
          signal: abort.signal,
        })
        .catch((error: unknown) => error);
      await within(arrived.promise, 'the request reaching the node');
      abort.abort();
      expect(await answer).toBeInstanceOf(Error);
      // Without the abort the node would wait for PASSTHROUGH_TIMEOUT_MS (30 s here).
      await within(nodeSideClosed.promise, "the node's request being closed after the client left");
      expect((await send(app, `/proxy/caches/${ids.caches}/echo`)).status).toBe(200);
    });

    it('survives a client that goes away mid-upload, and closes the request to the node', async () => {
      const nodeSideAborted = deferred();
      const firstChunk = deferred();
      node.override = (req) => {
        if (req.url !== '/slow-upload') return false;
        req.once('data', () => firstChunk.resolve());
        req.once('close', () => nodeSideAborted.resolve());
        req.resume();
        return true;
      };
      const body = new PassThrough();
      const abort = new AbortController();
      const answer = client
        .request({
          origin: app.url,
          path: `/proxy/caches/${ids.caches}/slow-upload`,
          method: 'POST',
          headers: { authorization: `Bearer ${app.token}` },
          body,
          signal: abort.signal,
        })
        .catch((error: unknown) => error);
      body.write('part;');
      await within(firstChunk.promise, 'the first chunk reaching the node');
      abort.abort();
      expect(await answer).toBeInstanceOf(Error);
      await within(nodeSideAborted.promise, "the node's request being closed after the client left");
      expect((await send(app, `/proxy/caches/${ids.caches}/echo`)).status).toBe(200);
    });
  });

  describe('errors', () => {
    it.each([
      ['an unknown kind', () => `/proxy/widgets/${ids.caches}/echo`],
      ['an unknown id', () => `/proxy/caches/${randomUUID()}/echo`],
      ['a malformed id', () => '/proxy/caches/not-a-uuid/echo'],
      ['a malformed percent-encoding in the id', () => '/proxy/caches/%E0%A4%A/echo'],
      ['an id of another kind', () => `/proxy/slbs/${ids.caches}/echo`],
      ['no id at all', () => '/proxy/caches'],
    ])('answers 404 NOT_FOUND for %s, without calling any node', async (_, path) => {
      const sent = await send(app, path());
      expect(sent.status).toBe(404);
      expect(sent.headers['content-type']).toMatch(/^application\/json/);
      expect(json(sent)).toMatchObject({ error: { code: 'NOT_FOUND' } });
      expect(node.requests).toEqual([]);
    });

    it('answers 404 once the node is deleted', async () => {
      const id = await createNode(app, 'slbs', { host: node.host, apiPort: node.port });
      expect((await send(app, `/proxy/slbs/${id}/echo`)).status).toBe(200);
      const deleted = await app.gql<unknown, { id: string }>('mutation($id: ID!) { deleteSlbNode(id: $id) }', { id });
      expect(deleted.errors).toBeUndefined();
      const sent = await send(app, `/proxy/slbs/${id}/echo`);
      expect(sent.status).toBe(404);
      expect(json(sent)).toMatchObject({ error: { code: 'NOT_FOUND' } });
    });

    it('answers 502 UPSTREAM_UNAVAILABLE when nothing listens on the node port', async () => {
      const id = await createNode(app, 'streamers', { host: '127.0.0.1', apiPort: await closedPort() });
      const sent = await send(app, `/proxy/streamers/${id}/api/ping`, { method: 'POST', body: 'payload' });
      expect(sent.status).toBe(502);
      expect(sent.headers['content-type']).toMatch(/^application\/json/);
      expect(json(sent)).toMatchObject({ error: { code: 'UPSTREAM_UNAVAILABLE' } });
    });

    it('answers 502 when the node drops the connection before answering', async () => {
      node.override = (req) => {
        if (req.url !== '/drop') return false;
        req.socket.destroy();
        return true;
      };
      const sent = await send(app, `/proxy/caches/${ids.caches}/drop`);
      expect(sent.status).toBe(502);
      expect(json(sent)).toMatchObject({ error: { code: 'UPSTREAM_UNAVAILABLE' } });
      expect((await send(app, `/proxy/caches/${ids.caches}/echo`)).status).toBe(200);
    });
  });

  describe('authentication', () => {
    it.each([
      ['no token', null],
      ['a wrong token', `sg_${randomBytes(32).toString('base64url')}`],
      ['a malformed token', 'not a token'],
    ])('rejects %s with the same 401 for existing and unknown nodes', async (_, token) => {
      const paths = [
        `/proxy/caches/${ids.caches}/echo`,
        `/proxy/caches/${randomUUID()}/echo`,
        '/proxy/caches/not-a-uuid/echo',
        `/proxy/widgets/${ids.caches}/echo`,
      ];
      const answers = await Promise.all(paths.map((path) => send(app, path, { token })));
      const first = answers[0]!;
      expect(first.status).toBe(401);
      expect(json(first)).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
      for (const sent of answers) {
        expect(sent.status).toBe(first.status);
        expect(sent.body.toString()).toBe(first.body.toString());
        expect(sent.headers['www-authenticate']).toBe(first.headers['www-authenticate']);
        expect(sent.headers['content-type']).toBe(first.headers['content-type']);
      }
      expect(node.requests).toEqual([]);
    });
  });

  describe('registry changes', () => {
    // A second real server on another loopback address, same port: only the host differs.
    const otherHost = '127.0.0.2';
    beforeAll(async () => {
      const other = createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`other:${req.url}`);
      });
      await new Promise<void>((resolve) => other.listen(node.port, otherHost, resolve));
      dispose(other, (s) => new Promise((resolve) => s.close(resolve)));
      expect((other.address() as AddressInfo).port).toBe(node.port);
    });
    const setCacheHost = async (id: string, host: string) => {
      const updated = await app.gql<unknown, { id: string; host: string }>(
        'mutation($id: ID!, $host: String!) { updateCacheNode(id: $id, input: { host: $host }) { id } }',
        { id, host },
      );
      expect(updated.errors).toBeUndefined();
    };
    /** Which server answered: the fake node (`node`) or the one on the other host (`other`). */
    const answeredBy = (sent: Sent) => (sent.body.toString().startsWith('other:') ? 'other' : 'node');

    it('uses a changed host on the very next request', async () => {
      const id = await createNode(app, 'caches', { host: '127.0.0.1', apiPort: node.port });
      const before = await send(app, `/proxy/caches/${id}/echo/x`);
      expect(json<EchoBody>(before).url).toBe('/echo/x');

      await setCacheHost(id, otherHost);
      const after = await send(app, `/proxy/caches/${id}/echo/x`);
      expect(after.status).toBe(200);
      expect(after.body.toString()).toBe('other:/echo/x');
    });

    it('uses a changed host on the very next request while other requests for that node are in flight', async () => {
      const id = await createNode(app, 'caches', { host: '127.0.0.1', apiPort: node.port });
      let busy = true;
      const background = Array.from({ length: 16 }, async () => {
        let sent = 0;
        for (; busy; sent++) expect((await send(app, `/proxy/caches/${id}/echo/bg`)).status).toBe(200);
        return sent;
      });
      try {
        for (const host of [otherHost, '127.0.0.1', otherHost, '127.0.0.1', otherHost]) {
          await setCacheHost(id, host);
          const sent = await send(app, `/proxy/caches/${id}/echo/fg`);
          expect(answeredBy(sent), `request after the change to ${host}`).toBe(host === otherHost ? 'other' : 'node');
        }
      } finally {
        busy = false;
      }
      const sentInBackground = await Promise.all(background);
      expect(sentInBackground.every((n) => n > 0)).toBe(true);
    });

    it('uses a changed port on the very next request', async () => {
      const second = await startFakeNode();
      const id = await createNode(app, 'streamers', { host: '127.0.0.1', apiPort: node.port });
      await send(app, `/proxy/streamers/${id}/echo`);
      await app.gql<unknown, { id: string; port: number }>(
        'mutation($id: ID!, $port: Int!) { updateStreamer(id: $id, input: { apiPort: $port }) { id } }',
        { id, port: second.port },
      );
      await send(app, `/proxy/streamers/${id}/echo`);
      expect(node.requests).toHaveLength(1);
      expect(second.requests).toHaveLength(1);
    });

    it('sends concurrent requests for different nodes each to its own node', async () => {
      const second = await startFakeNode();
      const mine = await createNode(app, 'slbs', { host: node.host, apiPort: node.port });
      const theirs = await createNode(app, 'slbs', { host: second.host, apiPort: second.port });
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          send(app, `/proxy/slbs/${i % 2 ? theirs : mine}/echo/${i}`).then((sent) => json<EchoBody>(sent).url),
        ),
      );
      expect(answers).toEqual(Array.from({ length: 40 }, (_, i) => `/echo/${i}`));
      const urls = (n: FakeNode) => n.requests.map((r) => Number(r.url.slice('/echo/'.length))).sort((a, b) => a - b);
      expect(urls(node)).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i));
      expect(urls(second)).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i + 1));
    });
  });
});

describe('passthrough timeout (PASSTHROUGH_TIMEOUT_MS=300)', () => {
  let app: TestApp;
  let node: FakeNode;
  let id: string;
  const held: ServerResponse[] = [];

  beforeAll(async () => {
    [app, node] = await Promise.all([startTestApp({ env: { PASSTHROUGH_TIMEOUT_MS: '300' } }), startFakeNode()]);
    id = await createNode(app, 'slbs', { host: node.host, apiPort: node.port });
    node.override = (req, res) => {
      if (req.url === '/never') {
        held.push(res); // accepts the request, never answers
        return true;
      }
      if (req.url === '/stall') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        held.push(res); // starts answering, then stalls forever
        return true;
      }
      return false;
    };
  });

  it('answers 504 UPSTREAM_TIMEOUT, within a bounded time, for a node that never answers', async () => {
    const started = performance.now();
    const sent = await within(send(app, `/proxy/slbs/${id}/never`), 'the 504');
    expect(sent.status).toBe(504);
    expect(sent.headers['content-type']).toMatch(/^application\/json/);
    expect(json(sent)).toMatchObject({ error: { code: 'UPSTREAM_TIMEOUT' } });
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    // The app is still fine, and fast nodes still answer under the short timeout.
    expect((await send(app, `/proxy/slbs/${id}/echo`)).status).toBe(200);
  });

  it('cuts a response whose body stalls after the head was sent', async () => {
    const res = await client.request({
      origin: app.url,
      path: `/proxy/slbs/${id}/stall`,
      method: 'GET',
      headers: { authorization: `Bearer ${app.token}` },
    });
    expect(res.statusCode).toBe(200);
    const cut = res.body.text().then(
      () => null,
      (error: unknown) => error,
    );
    expect(await within(cut, 'the stalled response being cut')).toBeInstanceOf(Error);
    expect((await send(app, `/proxy/slbs/${id}/echo`)).status).toBe(200);
  });
});

function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}
