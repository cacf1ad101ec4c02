import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { dispose } from './leftovers.js';

/**
 * A real TCP relay in front of a server (PostgreSQL, say) that a test can cut: every open
 * connection is reset and new ones are dropped until `restore()`. Simulates an outage without
 * touching the server itself.
 */
export interface TcpProxy {
  port: number;
  cut(): void;
  restore(): void;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let down = false;
  const server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
      socket.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: TcpProxy = {
    port: (server.address() as AddressInfo).port,
    cut() {
      down = true;
      for (const socket of open) socket.resetAndDestroy();
    },
    restore() {
      down = false;
    },
  };
  return dispose(proxy, () => {
    proxy.cut();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
}
