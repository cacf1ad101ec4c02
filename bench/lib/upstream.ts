import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { hashBody } from '../../test/helpers/hash-body.js';
import type { Ready } from './http-load.js';

/**
 * The upstream of the proxy benchmarks, a node:http server: any `GET` answers a small JSON
 * document, `POST /echo` hashes the body it receives (sha256) and answers with the byte count and
 * hash, and a WebSocket upgrade gets an echo (each message sent back as it came).
 */
export async function runUpstream(host: string): Promise<Ready> {
  const answer = JSON.stringify({ ok: true, node: 'bench-upstream', items: [1, 2, 3], note: 'a small JSON answer' });
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/echo')) {
      void hashBody(req).then((digest) => {
        const body = JSON.stringify(digest);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { url: `http://${host}:${(server.address() as AddressInfo).port}` };
}
