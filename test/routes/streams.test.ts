import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StreamGateClient } from '@streamgate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { eventually } from '../helpers/eventually.js';
import { closedPort } from '../helpers/fake-node.js';
import { sdkClient } from '../helpers/sdk.js';

/**
 * STREAM routes end to end: a real app whose routes file names TCP routes, small real TCP servers
 * as upstreams, and plain sockets as clients.
 */

let t: TestApp;
let sg: StreamGateClient;
let dir: string;
let routesFile: string;
let echo: Server;
let echoPort: number;
const servers: Server[] = [];

/** A TCP server on 127.0.0.1; closed after the file. */
async function tcpServer(onConnection: (socket: Socket) => void, allowHalfOpen = false): Promise<[Server, number]> {
  const server = createServer({ allowHalfOpen }, onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return [server, (server.address() as { port: number }).port];
}

/** Replaces the routes file the way editors do: a new file renamed over the old one. */
async function writeRoutes(routes: { alias: string; listenPort: number; upstream: string }[]): Promise<void> {
  const lines = ['routes:'];
  for (const r of routes)
    lines.push(`  - alias: ${r.alias}`, `    listenPort: ${r.listenPort}`, `    upstream: ${r.upstream}`);
  await writeFile(`${routesFile}.tmp`, `${lines.join('\n')}\n`);
  await rename(`${routesFile}.tmp`, routesFile);
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends `text`, reads until `expected` bytes came back. */
async function roundTrip(socket: Socket, text: string, expected = text.length): Promise<string> {
  let got = '';
  socket.setEncoding('utf8');
  const done = new Promise<string>((resolve) => {
    const onData = (chunk: string) => {
      got += chunk;
      if (got.length >= expected) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
  });
  socket.write(text);
  return done;
}

/** Resolves with how the socket ended: `end` (a FIN), `error:<code>`, or `close`. */
function ending(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once('end', () => resolve('end'));
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(`error:${e.code}`));
    socket.once('close', () => resolve('close'));
    socket.resume();
  });
}

async function route(alias: string) {
  return (await sg.route({ alias })).route;
}

async function events(type: string) {
  return t.db.prisma.eventLog.findMany({ where: { type }, orderBy: { seq: 'asc' } });
}

const ports: Record<string, number> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamgate-streams-'));
  routesFile = join(dir, 'routes.yaml');
  [echo, echoPort] = await tcpServer((socket) => socket.pipe(socket));
  for (const name of ['echo', 'dead', 'taken', 'added', 'moved']) ports[name] = await closedPort();
  const deadUpstream = await closedPort();
  // Another process's port: the route that wants it cannot listen.
  const [, takenPort] = await tcpServer(() => {});
  ports.taken = takenPort;
  await writeRoutes([
    { alias: 'echo', listenPort: ports.echo as number, upstream: `127.0.0.1:${echoPort}` },
    { alias: 'dead', listenPort: ports.dead as number, upstream: `127.0.0.1:${deadUpstream}` },
    { alias: 'taken', listenPort: takenPort, upstream: `127.0.0.1:${echoPort}` },
  ]);
  t = await startTestApp({
    env: {
      ROUTES_FILE: routesFile,
      PROXY_HOST: '127.0.0.1',
      STREAM_IDLE_TIMEOUT_MS: '4000',
      SHUTDOWN_TIMEOUT_MS: '20000',
    },
  });
  sg = sdkClient(t);
});

afterAll(async () => {
  await t?.app.stop();
  for (const server of servers) server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('STREAM routes', () => {
  it('pipes bytes both ways and counts connections and bytes (GraphQL and metrics)', async () => {
    const client = await dial(ports.echo as number);
    const payload = 'x'.repeat(100_000);
    expect(await roundTrip(client, payload)).toBe(payload);
    expect(await route('echo')).toMatchObject({ kind: 'STREAM', connections: 1, bytesIn: 100_000, bytesOut: 100_000 });

    client.end();
    expect(await ending(client)).toBe('end');
    await eventually(async () => expect((await route('echo'))?.connections).toBe(0));
    const metrics = await (await t.fetch('/metrics')).text();
    expect(metrics).toContain('streamgate_stream_connections{route="echo"} 0');
    expect(metrics).toContain('streamgate_stream_connections_total{route="echo"} 1');
    expect(metrics).toContain('streamgate_stream_bytes_total{route="echo",direction="in"} 100000');
    expect(metrics).toContain('streamgate_stream_bytes_total{route="echo",direction="out"} 100000');
  });

  it('resets the client when the upstream is down, with one WARN event per outage', async () => {
    for (let i = 0; i < 3; i++) {
      const client = await dial(ports.dead as number);
      expect(await ending(client)).toMatch(/^error:ECONNRESET$|^close$/);
    }
    const warned = await eventually(async () => {
      const found = await events('route.upstream_unavailable');
      expect(found).toHaveLength(1);
      return found;
    });
    expect(warned[0]).toMatchObject({ severity: 'WARN', source: 'routes' });
    expect(warned[0]?.message).toMatch(/stream route "dead": upstream 127\.0\.0\.1:\d+ unreachable \(ECONNREFUSED\)/);
  });

  it('excludes a route whose listenPort another process holds, with the reason and a WARN event', async () => {
    const taken = await route('taken');
    expect(taken).toMatchObject({ kind: 'EXCLUDED', listenPort: ports.taken });
    expect(taken?.excludedReason).toBe(
      `listenPort ${ports.taken} cannot be bound on 127.0.0.1: in use by another process (EADDRINUSE)`,
    );
    const warned = await eventually(async () => {
      const found = (await events('route.excluded')).filter((e) => e.message.includes('"taken"'));
      expect(found).toHaveLength(1);
      return found;
    });
    expect(warned[0]).toMatchObject({ severity: 'WARN' });
    // The others are unaffected.
    const client = await dial(ports.echo as number);
    expect(await roundTrip(client, 'still here')).toBe('still here');
    client.destroy();
  });

  it('passes a half-close on: the client stops sending, the upstream answers after that and then ends', async () => {
    // Reads everything, then (only after the client's FIN) answers with its length and a hash.
    const [, port] = await tcpServer((socket) => {
      const hash = createHash('sha256');
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      socket.on('end', () => socket.end(`${bytes} ${hash.digest('hex')}`));
    }, true);
    const listenPort = await closedPort();
    await writeRoutes([
      { alias: 'echo', listenPort: ports.echo as number, upstream: `127.0.0.1:${echoPort}` },
      { alias: 'half', listenPort, upstream: `127.0.0.1:${port}` },
    ]);
    await eventually(async () => expect((await route('half'))?.kind).toBe('STREAM'));
    await eventually(() => dial(listenPort).then((s) => s.destroy()));

    const client = await dial(listenPort);
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    let answer = '';
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => {
      answer += chunk;
    });
    const ended = once(client, 'end');
    client.end(body);
    await ended;
    expect(answer).toBe(`${body.length} ${createHash('sha256').update(body).digest('hex')}`);
  });

  it('opens, moves and closes listeners as the routes file changes; open connections finish', async () => {
    const open = await dial(ports.echo as number);
    expect(await roundTrip(open, 'before')).toBe('before');

    // echo moves to another port, `added` appears.
    await writeRoutes([
      { alias: 'echo', listenPort: ports.moved as number, upstream: `127.0.0.1:${echoPort}` },
      { alias: 'added', listenPort: ports.added as number, upstream: `127.0.0.1:${echoPort}` },
    ]);
    await eventually(async () => expect((await route('echo'))?.listenPort).toBe(ports.moved));
    await eventually(async () => {
      const client = await dial(ports.added as number);
      expect(await roundTrip(client, 'new route')).toBe('new route');
      client.destroy();
    });
    const moved = await dial(ports.moved as number);
    expect(await roundTrip(moved, 'moved')).toBe('moved');
    moved.destroy();
    // The old port takes no new connection, and the one open on it still works.
    await expect(dial(ports.echo as number)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await roundTrip(open, 'after the move')).toBe('after the move');
    open.destroy();

    // Removed: the listener is gone.
    await writeRoutes([{ alias: 'echo', listenPort: ports.moved as number, upstream: `127.0.0.1:${echoPort}` }]);
    await eventually(async () => expect(await route('added')).toBeNull());
    await eventually(() => expect(dial(ports.added as number)).rejects.toMatchObject({ code: 'ECONNREFUSED' }));
  });

  it('closes a connection idle for STREAM_IDLE_TIMEOUT_MS both ways', async () => {
    const client = await dial(ports.moved as number);
    expect(await roundTrip(client, 'ping')).toBe('ping');
    const started = Date.now();
    expect(await ending(client)).toMatch(/^(end|close|error:ECONNRESET)$/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_500);
  });

  it('keeps memory bounded: a client that does not read stops the upstream (backpressure)', async () => {
    let written = 0;
    let upstreamSocket: Socket | undefined;
    const [, port] = await tcpServer((socket) => {
      upstreamSocket = socket;
      const chunk = Buffer.alloc(64 * 1024);
      const pump = () => {
        while (written < 256 * 1024 * 1024) {
          written += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
      };
      pump();
    });
    const listenPort = await closedPort();
    await writeRoutes([
      { alias: 'echo', listenPort: ports.moved as number, upstream: `127.0.0.1:${echoPort}` },
      { alias: 'firehose', listenPort, upstream: `127.0.0.1:${port}` },
    ]);
    await eventually(async () => expect((await route('firehose'))?.kind).toBe('STREAM'));
    const client = await eventually(() => dial(listenPort));
    client.pause(); // reads nothing
    await eventually(() => expect(written).toBeGreaterThan(0));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // Socket buffers (kernel and ours) hold a few MiB at most; without backpressure it is all of it.
    expect(written).toBeLessThan(32 * 1024 * 1024);
    client.destroy();
    upstreamSocket?.destroy();
  });
});

describe('shutdown', () => {
  it('lets open stream connections finish, then stops', async () => {
    const client = await dial(ports.moved as number);
    expect(await roundTrip(client, 'one')).toBe('one');
    const stopped = t.app.stop();
    // Still served while the app drains; no new connection is accepted.
    expect(await roundTrip(client, 'two')).toBe('two');
    await expect(dial(ports.moved as number)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    client.end();
    await stopped;
    echo.close();
  });
});

describe('draining, bounded by SHUTDOWN_TIMEOUT_MS', () => {
  it('cuts a removed route’s connections that outlast it, and only those', async () => {
    const [, upstreamPort] = await tcpServer((socket) => socket.pipe(socket));
    const [slowPort, keptPort] = [await closedPort(), await closedPort()];
    const file = join(dir, 'drain.yaml');
    const write = async (routes: { alias: string; listenPort: number }[]) => {
      const lines = ['routes:'];
      for (const r of routes)
        lines.push(
          `  - alias: ${r.alias}`,
          `    listenPort: ${r.listenPort}`,
          `    upstream: 127.0.0.1:${upstreamPort}`,
        );
      await writeFile(`${file}.tmp`, `${lines.join('\n')}\n`);
      await rename(`${file}.tmp`, file);
    };
    await write([
      { alias: 'slow', listenPort: slowPort },
      { alias: 'kept', listenPort: keptPort },
    ]);
    const app = await startTestApp({ env: { ROUTES_FILE: file, PROXY_HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '700' } });
    try {
      const removed = await dial(slowPort);
      const kept = await dial(keptPort);
      expect(await roundTrip(removed, 'a')).toBe('a');
      await write([{ alias: 'kept', listenPort: keptPort }]);
      const started = Date.now();
      const ended = await ending(removed);
      expect(ended).toMatch(/^(end|close|error:ECONNRESET)$/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(600);
      // The route still there keeps its connection.
      expect(await roundTrip(kept, 'still')).toBe('still');
      kept.destroy();
    } finally {
      await app.app.stop();
    }
  });
});

describe('a listen address this machine does not have', () => {
  it('excludes the route with EADDRNOTAVAIL and says to check PROXY_HOST', async () => {
    const file = join(dir, 'elsewhere.yaml');
    const listenPort = await closedPort();
    await writeFile(
      file,
      `routes:\n  - alias: nowhere\n    listenPort: ${listenPort}\n    upstream: 127.0.0.1:${echoPort}\n`,
    );
    // 192.0.2.1 (TEST-NET-1) is on no interface here.
    const app = await startTestApp({ env: { ROUTES_FILE: file, PROXY_HOST: '192.0.2.1' } });
    try {
      const found = (await sdkClient(app).route({ alias: 'nowhere' })).route;
      expect(found).toMatchObject({ kind: 'EXCLUDED', listenPort });
      expect(found?.excludedReason).toBe(
        `listenPort ${listenPort} cannot be bound on 192.0.2.1: no such local address (EADDRNOTAVAIL; check PROXY_HOST)`,
      );
    } finally {
      await app.app.stop();
    }
  });
});
