import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface FakeGuest {
  type: 'lxc' | 'qemu';
  vmid: number;
  name: string;
  node: string;
  status?: 'running' | 'stopped';
  /** LXC: from `/interfaces`; VM: from the guest agent (none → the agent is not running: 500). */
  ips?: string[];
}

export interface FakeCluster {
  nodes: { name: string; ip?: string }[];
  guests: FakeGuest[];
}

/**
 * A small real Proxmox VE API on 127.0.0.1 speaking the JSON shapes StreamGate reads:
 * `cluster/resources`, `cluster/status`, LXC `interfaces` and the QEMU guest agent's
 * `network-get-interfaces`, each as `{ "data": … }`, behind `PVEAPIToken` auth (401 otherwise).
 * It can be stopped and started again on the same port, and serve TLS with a self-signed
 * certificate (test/helpers/tls, made for these tests only: CN and SAN 127.0.0.1).
 */
export class FakeProxmox {
  cluster: FakeCluster;
  /** The token it accepts, as `PVEAPIToken=<id>=<secret>`. */
  acceptedToken: string;
  /** Requests, `METHOD /path`, in order. */
  readonly requests: string[] = [];
  private server: Server | null = null;
  private port = 0;

  constructor(
    cluster: FakeCluster,
    readonly token = { id: 'streamgate@pve!links', secret: '6f7d0c36-0d0e-4a8e-9a43-2f1b3c5d7e90' },
    private readonly tls = false,
  ) {
    this.cluster = cluster;
    this.acceptedToken = `PVEAPIToken=${token.id}=${token.secret}`;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.answer(req, res);
    const here = new URL('./tls/', import.meta.url);
    this.server = this.tls
      ? createHttpsServer(
          { key: readFileSync(new URL('self-signed.key', here)), cert: readFileSync(new URL('self-signed.crt', here)) },
          handler,
        )
      : createHttpServer(handler);
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Down: the port refuses connections until start() again. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?', 1)[0] ?? '';
    this.requests.push(`${req.method} ${path}`);
    const [status, body] =
      req.headers.authorization === this.acceptedToken ? this.reply(path) : ([401, { data: null }] as const);
    res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8' });
    res.end(JSON.stringify(body));
  }

  private reply(path: string): readonly [number, unknown] {
    const { nodes, guests } = this.cluster;
    if (path === '/api2/json/cluster/resources') {
      return [
        200,
        {
          data: [
            ...nodes.map((n) => ({ id: `node/${n.name}`, type: 'node', node: n.name, status: 'online', maxcpu: 8 })),
            ...guests.map((g) => ({
              id: `${g.type}/${g.vmid}`,
              type: g.type,
              vmid: g.vmid,
              name: g.name,
              node: g.node,
              status: g.status ?? 'running',
              maxmem: 2147483648,
            })),
            { id: 'storage/pve1/local', type: 'storage', node: 'pve1', storage: 'local', status: 'available' },
          ],
        },
      ];
    }
    if (path === '/api2/json/cluster/status') {
      return [
        200,
        {
          data: [
            { id: 'cluster', type: 'cluster', name: 'lab', nodes: nodes.length, quorate: 1 },
            ...nodes.map((n, i) => ({
              id: `node/${n.name}`,
              type: 'node',
              name: n.name,
              nodeid: i + 1,
              online: 1,
              ip: n.ip,
            })),
          ],
        },
      ];
    }
    const guestPath =
      /^\/api2\/json\/nodes\/([^/]+)\/(lxc|qemu)\/(\d+)\/(interfaces|agent\/network-get-interfaces)$/.exec(path);
    const guest =
      guestPath &&
      guests.find((g) => g.node === guestPath[1] && g.type === guestPath[2] && g.vmid === Number(guestPath[3]));
    if (!guest) return [404, { data: null }];
    if (guest.type === 'lxc') {
      return [
        200,
        {
          data: [
            { name: 'lo', hwaddr: '00:00:00:00:00:00', inet: '127.0.0.1/8', inet6: '::1/128' },
            ...(guest.ips ?? []).map((ip, i) => ({ name: `eth${i}`, hwaddr: 'bc:24:11:00:00:01', inet: `${ip}/24` })),
          ],
        },
      ];
    }
    if (!guest.ips) return [500, { data: null, message: 'QEMU guest agent is not running' }];
    return [
      200,
      {
        data: {
          result: [
            { name: 'lo', 'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', prefix: 8 }] },
            {
              name: 'ens18',
              'hardware-address': 'bc:24:11:00:00:02',
              'ip-addresses': guest.ips.map((ip) => ({ 'ip-address': ip, 'ip-address-type': 'ipv4', prefix: 24 })),
            },
          ],
        },
      },
    ];
  }
}
