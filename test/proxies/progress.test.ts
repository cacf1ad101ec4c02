import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../health/helpers.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { graphqlWsClient } from '../helpers/graphql-ws.js';
import { dispose } from '../helpers/leftovers.js';
import { readSse } from '../helpers/sse.js';
import { closedPort } from './helpers.js';

/** validateProxyProgress: the pipeline's steps streamed one by one, over graphql-ws and SSE. */

const SUBSCRIPTION = `
  subscription Progress($d: String!) {
    validateProxyProgress(input: { destination: $d }) { step { name ok durationMs detail hint } done ok }
  }
`;

interface Progress {
  step: { name: string; ok: boolean; durationMs: number; detail: string | null; hint: string | null };
  done: boolean;
  ok: boolean | null;
}

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});

/** An upstream that holds every response until `release()`: the HTTP step cannot finish before. */
async function heldUpstream() {
  const held: ServerResponse[] = [];
  let open = 0;
  const server = createServer((_req, res) => {
    held.push(res);
  });
  server.on('connection', (socket) => {
    open++;
    socket.on('close', () => open--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  dispose(server, () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    arrived: () => held.length,
    openConnections: () => open,
    release: () => {
      for (const res of held.splice(0)) res.writeHead(204).end();
    },
  };
}

describe('validateProxyProgress', () => {
  it('over graphql-ws: each step arrives as it completes, the last says done and ok', async () => {
    const upstream = await heldUpstream();
    const ws = graphqlWsClient(t);
    const received: Progress[] = [];
    const errors: unknown[] = [];
    let completed = false;
    ws.subscribe<{ validateProxyProgress: Progress }>(
      { query: SUBSCRIPTION, variables: { d: upstream.url } },
      {
        next: (msg) => {
          if (msg.errors) errors.push(...msg.errors);
          if (msg.data) received.push(msg.data.validateProxyProgress);
        },
        error: (e) => errors.push(e),
        complete: () => {
          completed = true;
        },
      },
    );
    // The GET is waiting on the upstream: SYNTAX, DNS and TCP are already out, HTTP is not.
    await eventually(() => expect(upstream.arrived()).toBe(1));
    await eventually(() => expect(received.map((p) => p.step.name)).toEqual(['SYNTAX', 'DNS', 'TCP']));
    expect(received.every((p) => p.step.ok && !p.done && p.ok === null)).toBe(true);
    expect(completed).toBe(false);

    upstream.release();
    await eventually(() => expect(completed).toBe(true));
    expect(errors).toEqual([]);
    expect(received.map((p) => [p.step.name, p.done, p.ok])).toEqual([
      ['SYNTAX', false, null],
      ['DNS', false, null],
      ['TCP', false, null],
      ['HTTP', true, true],
    ]);
  });

  it('over SSE: a failure is the last event, with its hint, and the stream ends', async () => {
    const port = await closedPort();
    const res = await t.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: SUBSCRIPTION, variables: { d: `http://127.0.0.1:${port}/` } }),
    });
    expect(res.status).toBe(200);
    const received: Progress[] = [];
    let ended = false;
    for await (const { event, data } of readSse(res.body as ReadableStream<Uint8Array>)) {
      if (event === 'complete') {
        ended = true;
        break;
      }
      if (event !== 'next' || !data) continue; // keep-alive pings
      received.push((JSON.parse(data) as { data: { validateProxyProgress: Progress } }).data.validateProxyProgress);
    }
    expect(ended).toBe(true);
    expect(received.map((p) => [p.step.name, p.step.ok, p.done, p.ok])).toEqual([
      ['SYNTAX', true, false, null],
      ['DNS', true, false, null],
      ['TCP', false, true, false],
    ]);
    expect(received[2]?.step.hint).toBe(
      `Port ${port} is not accepting connections. Check if the service is running and the port is correct.`,
    );
  });

  it('a client that leaves mid-step ends the validation: the held request is abandoned', async () => {
    const upstream = await heldUpstream();
    const ws = graphqlWsClient(t);
    const received: string[] = [];
    const unsubscribe = ws.subscribe<{ validateProxyProgress: Progress }>(
      { query: SUBSCRIPTION, variables: { d: upstream.url } },
      {
        next: (msg) => msg.data && received.push(msg.data.validateProxyProgress.step.name),
        error: () => {},
        complete: () => {},
      },
    );
    await eventually(() => expect(upstream.arrived()).toBe(1));
    await eventually(() => expect(received).toEqual(['SYNTAX', 'DNS', 'TCP']));
    expect(upstream.openConnections()).toBeGreaterThan(0);
    unsubscribe();
    // The aborted GET closes its connection: the upstream sees the socket go, with no answer sent.
    // (Well inside the HTTP step's own 10 s timeout, which would close it too.)
    await eventually(() => expect(upstream.openConnections()).toBe(0), 3_000);
    expect(received).toEqual(['SYNTAX', 'DNS', 'TCP']);
  });
});

describe('validateProxy over HTTP', () => {
  it('a client that disconnects mid-validation ends it: the held request is abandoned', async () => {
    const upstream = await heldUpstream();
    const controller = new AbortController();
    const request = t
      .fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: 'mutation($d: String!) { validateProxy(input: { destination: $d }) { ok } }',
          variables: { d: upstream.url },
        }),
        signal: controller.signal,
      })
      .catch((error: unknown) => error);
    await eventually(() => expect(upstream.arrived()).toBe(1));
    controller.abort();
    expect(await request).toBeInstanceOf(Error);
    await eventually(() => expect(upstream.openConnections()).toBe(0), 3_000);
  });
});
