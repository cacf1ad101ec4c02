import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dispose } from '../helpers/leftovers.js';

/** A real HTTP upstream on 127.0.0.1 that answers `status` (changeable) and records request paths. */
export interface Upstream {
  url: string;
  port: number;
  status: number;
  paths: string[];
  close(): Promise<void>;
}

export async function startUpstream(status = 200): Promise<Upstream> {
  const upstream: Upstream = {
    url: '',
    port: 0,
    status,
    paths: [],
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    upstream.paths.push(req.url ?? '');
    res.writeHead(upstream.status, { 'content-type': 'text/plain' }).end(`status ${upstream.status}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.port = (server.address() as AddressInfo).port;
  upstream.url = `http://127.0.0.1:${upstream.port}/`;
  dispose(server, () => {
    server.closeAllConnections();
    return upstream.close();
  });
  return upstream;
}

export { closedPort } from '../helpers/fake-node.js';
