import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStreamGateClient } from '@streamgate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { eventually } from '../helpers/eventually.js';
import { closedPort } from '../helpers/fake-node.js';
import { dispose } from '../helpers/leftovers.js';
import { httpRoute } from './helpers.js';

/**
 * WebSocket upgrades through the data plane to a real `ws` server: messages both ways, pings and
 * pongs, close codes kept in both directions, and the errors of the upgrade itself.
 */

let t: TestApp;
let dir: string;
let upstream: { wss: WebSocketServer; port: number; lastRequest?: import('node:http').IncomingMessage };

async function startWsUpstream() {
  const server = createServer((_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('upgrade only'));
  const wss = new WebSocketServer({ noServer: true });
  const state: typeof upstream = { wss, port: 0 };
  server.on('upgrade', (req, socket, head) => {
    state.lastRequest = req;
    if (req.url?.startsWith('/refuse')) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\nno, sir');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  // An echo: text stays text, binary stays binary.
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  dispose(server, (s) => {
    for (const client of wss.clients) client.terminate();
    s.closeAllConnections();
    return new Promise((resolve) => s.close(resolve));
  });
  return state;
}

/** A WebSocket to the data plane for `host`, open. */
async function connect(host: string, path = '/socket'): Promise<WebSocket> {
  const ws = new WebSocket(`${t.proxyUrl?.replace('http', 'ws')}${path}`, { headers: { host } });
  dispose(ws, (w) => w.terminate());
  await once(ws, 'open');
  return ws;
}

/** The status of a refused upgrade and its body. */
async function refused(host: string, path = '/socket'): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(`${t.proxyUrl?.replace('http', 'ws')}${path}`, { headers: { host } });
  dispose(ws, (w) => w.terminate());
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => {}); // follows unexpected-response
  });
}

beforeAll(async () => {
  upstream = await startWsUpstream();
  dir = await mkdtemp(join(tmpdir(), 'streamgate-data-plane-ws-'));
  const routesFile = join(dir, 'routes.yaml');
  const dead = await closedPort();
  await writeFile(
    routesFile,
    `routes:\n${[
      httpRoute('live', `http://127.0.0.1:${upstream.port}`),
      httpRoute('gone', `http://127.0.0.1:${dead}`),
    ].join('\n')}\n`,
  );
  t = await startTestApp({ env: { ROUTES_FILE: routesFile }, dataPlane: true });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('WebSocket upgrades', () => {
  it('passes messages both ways, text and binary, with the path, query and X-Forwarded headers', async () => {
    const ws = await connect('live.example.test', '/socket?room=1');
    expect(upstream.lastRequest?.url).toBe('/socket?room=1');
    expect(upstream.lastRequest?.headers).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-host': 'live.example.test',
      upgrade: 'websocket',
    });
    ws.send('hello');
    const [text, textIsBinary] = await once(ws, 'message');
    expect([String(text), textIsBinary]).toEqual(['hello', false]);
    const big = Buffer.alloc(1024 * 1024, 7);
    ws.send(big);
    const [binary, binaryIsBinary] = await once(ws, 'message');
    expect(binaryIsBinary).toBe(true);
    expect(Buffer.compare(binary as Buffer, big)).toBe(0);
    ws.close();
  });

  it('passes pings and pongs in both directions', async () => {
    const ws = await connect('live');
    ws.ping('from-client');
    const [pong] = await once(ws, 'pong');
    expect(String(pong)).toBe('from-client');

    const [server] = [...upstream.wss.clients].slice(-1);
    server?.ping('from-upstream');
    const [serverPong] = await once(server as WebSocket, 'pong');
    expect(String(serverPong)).toBe('from-upstream');
    ws.close();
  });

  it('keeps close codes and reasons in both directions', async () => {
    const ws = await connect('live');
    const [server] = [...upstream.wss.clients].slice(-1);
    const serverClosed = once(server as WebSocket, 'close');
    ws.close(4001, 'client says bye');
    const [code, reason] = await serverClosed;
    expect([code, String(reason)]).toEqual([4001, 'client says bye']);

    const second = await connect('live');
    const [otherServer] = [...upstream.wss.clients].filter((c) => c.readyState === WebSocket.OPEN).slice(-1);
    const clientClosed = once(second, 'close');
    otherServer?.close(4002, 'upstream says bye');
    const [clientCode, clientReason] = await clientClosed;
    expect([clientCode, String(clientReason)]).toEqual([4002, 'upstream says bye']);
  });

  it('answers 404 for an unknown host, 502 for a dead upstream, and passes an upstream refusal through', async () => {
    const unknown = await refused('nobody.example.test');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error.code).toBe('ROUTE_NOT_FOUND');

    const dead = await refused('gone');
    expect(dead.status).toBe(502);
    expect(JSON.parse(dead.body).error.code).toBe('UPSTREAM_UNAVAILABLE');

    const refusedByUpstream = await refused('live', '/refuse');
    expect(refusedByUpstream).toEqual({ status: 403, body: 'no, sir' });
  });

  it('upgrades on a route made from a node for admins only, without forwarding their token', async () => {
    const sg = createStreamGateClient({ url: t.url, token: t.token });
    await sg.createCacheNode({ input: { name: 'ws-node', host: '127.0.0.1', apiPort: upstream.port } });
    const anonymous = await refused('cache-ws-node');
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body).error.code).toBe('UNAUTHENTICATED');

    const ws = new WebSocket(`${t.proxyUrl?.replace('http', 'ws')}/admin`, {
      headers: { host: 'cache-ws-node', authorization: `Bearer ${t.token}` },
    });
    dispose(ws, (w) => w.terminate());
    await once(ws, 'open');
    expect(upstream.lastRequest?.url).toBe('/admin');
    expect(upstream.lastRequest?.headers.authorization).toBeUndefined();
    ws.close();
  });

  it('closes the tunnel when either side goes away', async () => {
    const ws = await connect('live');
    const [server] = [...upstream.wss.clients].slice(-1);
    const serverClosed = once(server as WebSocket, 'close');
    ws.terminate(); // no close frame: the TCP connection just ends
    await serverClosed;
    await eventually(() => expect([...upstream.wss.clients].includes(server as WebSocket)).toBe(false));
  });
});
