import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { hashBody } from './hash-body.js';
import { dispose } from './leftovers.js';

/**
 * A small, real node API on 127.0.0.1: `/api/ping` (up, down or hanging on demand), the streamer
 * API (`/api/streams`, `/api/traffic`), and `/echo/*`, which describes the request it received.
 */
export type PingMode = 'up' | 'down' | 'hang';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
}

export interface EchoBody {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  bodyBytes: number;
  bodySha256: string;
}

export interface FakeNode {
  host: '127.0.0.1';
  port: number;
  url: string;
  requests: RecordedRequest[];
  ping: PingMode;
  streams: Map<string, unknown>;
  /** Handles a path itself when it returns true (for one-off behaviours in a test). */
  override?: (req: IncomingMessage, res: ServerResponse) => boolean;
  close(): Promise<void>;
}

export async function startFakeNode(): Promise<FakeNode> {
  const sockets = new Set<Socket>();
  const node = { host: '127.0.0.1', requests: [], ping: 'up', streams: new Map() } as unknown as FakeNode;
  const server = createServer((req, res) => {
    node.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
    });
    if (node.override?.(req, res)) return;
    handle(node, req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  node.port = (server.address() as AddressInfo).port;
  node.url = `http://127.0.0.1:${node.port}`;
  node.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return dispose(node, (n) => n.close());
}

function handle(node: FakeNode, req: IncomingMessage, res: ServerResponse) {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (path === '/api/ping') {
    if (node.ping === 'hang') return; // never answers
    return json(res, node.ping === 'up' ? 200 : 503, { ok: node.ping === 'up' });
  }
  if (path === '/api/traffic' && req.method === 'GET') return json(res, 200, { bytesIn: 1000, bytesOut: 5000 });
  if (path === '/api/streams' && req.method === 'GET') return json(res, 200, [...node.streams.values()]);
  if (path === '/api/streams' && req.method === 'POST') {
    return readBody(req).then((body) => {
      const stream = { id: randomUUID(), ...(JSON.parse(body.toString()) as object) };
      node.streams.set(stream.id, stream);
      json(res, 201, stream);
    });
  }
  if (path.startsWith('/api/streams/') && req.method === 'DELETE') {
    const id = decodeURIComponent(path.slice('/api/streams/'.length));
    return node.streams.delete(id) ? res.writeHead(204).end() : json(res, 404, { error: 'no such stream' });
  }
  if (path.startsWith('/echo')) {
    return hashBody(req).then(({ bytes, sha256 }) => {
      const echo: EchoBody = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        bodyBytes: bytes,
        bodySha256: sha256,
      };
      json(res, 200, echo, { 'x-node-header': 'from-node', connection: 'keep-alive', 'keep-alive': 'timeout=5' });
    });
  }
  json(res, 404, { error: 'not found' });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
