import { rename, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Agent, type Dispatcher } from 'undici';
import type { Logger } from '../../src/lib/logger.js';
import { dispose } from '../helpers/leftovers.js';

/** A client of the data plane: its own pool, so one test's connections never serve another's. */
export function dataPlaneClient(proxyUrl: string) {
  const agent = dispose(new Agent({ keepAliveTimeout: 1_000 }), (a) => a.destroy());
  return {
    agent,
    /** A request for `host` (the Host header) to the data plane. */
    send(host: string, path = '/', init: Partial<Dispatcher.RequestOptions> = {}) {
      const headers = { host, ...(init.headers as Record<string, string> | undefined) };
      // The path as given, byte for byte (a URL would be normalised first).
      return agent.request({ method: 'GET', ...init, origin: proxyUrl, path, headers });
    },
  };
}

/** Sends raw bytes to `url`'s port and resolves with everything the server answered until it closed. */
export function rawExchange(url: string, bytes: string, waitMs = 2_000): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    setTimeout(() => socket.destroy(), waitMs).unref();
  });
}

/** The routes file, replaced the way editors do: a new file renamed over the old one. */
export async function writeRoutes(path: string, routes: string[]): Promise<void> {
  await writeFile(`${path}.tmp`, `routes:\n${routes.join('\n')}\n`);
  await rename(`${path}.tmp`, path);
}

/** One HTTP route of the routes file. */
export function httpRoute(alias: string, upstream: string, extra: Record<string, string> = {}): string {
  const lines = [`  - alias: ${alias}`, `    upstream: ${upstream}`];
  for (const [key, value] of Object.entries(extra)) lines.push(`    ${key}: ${value}`);
  return lines.join('\n');
}

/** A real pino logger whose JSON lines are kept in `lines` (to read the access log). */
export function capturedLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}
