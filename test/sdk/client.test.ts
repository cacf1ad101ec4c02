import { randomUUID } from 'node:crypto';
import { RelayClosedError } from '@streamgate/client';
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { eventually } from '../helpers/eventually.js';
import { startFakeNode } from '../helpers/fake-node.js';
import { rejection, sdkClient } from '../helpers/sdk.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The SDK against a real app: typed calls over HTTP, subscriptions over graphql-ws (with
 * reconnects through a TCP relay the test cuts), typed errors, and the raw relay helpers.
 */

let t: TestApp;

const client = (opts: { url?: string; token?: string } = {}) => sdkClient(t, opts);

beforeAll(async () => {
  t = await startTestApp();
});

describe('queries and mutations over HTTP', () => {
  it('creates, lists and pings nodes with typed results', async () => {
    const node = await startFakeNode();
    const sg = client();
    const { createStreamer } = await sg.createStreamer({
      input: { name: 'sdk-streamer', host: '127.0.0.1', apiPort: node.port, httpPort: 8080 },
    });
    expect(createStreamer).toMatchObject({ __typename: 'Streamer', name: 'sdk-streamer', httpPort: 8080 });
    const { streamers } = await sg.streamers({ first: 100 });
    expect(streamers.edges.map((e) => e.node.id)).toContain(createStreamer.id);
    const { ping } = await sg.ping({ id: createStreamer.id });
    expect(ping).toMatchObject({ status: 'HEALTHY', node: { id: createStreamer.id } });
  });

  it('throws a typed UNAUTHENTICATED error for a wrong token', async () => {
    const error = await rejection(client({ token: 'sg_wrong' }).settings());
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(error.status).toBe(401);
  });

  it('exposes field and problems of a BAD_USER_INPUT answer', async () => {
    const error = await rejection(client().createCacheNode({ input: { name: '', host: 'bad host', apiPort: 0 } }));
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.field).toMatch(/^input\./);
    expect(error.problems.length).toBeGreaterThanOrEqual(2);
    expect(error.problems.map((p) => p.field)).toEqual(expect.arrayContaining(['input.name', 'input.apiPort']));
  });

  it('names an unreachable server as NETWORK', async () => {
    const error = await rejection(client({ url: 'http://127.0.0.1:1' }).settings());
    expect(error.code).toBe('NETWORK');
  });
});

describe('subscriptions over graphql-ws', () => {
  it('yields typed results and ends cleanly on return()', async () => {
    const sg = client();
    const events = sg.eventLogged({ minSeverity: 'WARN' });
    const first = events.next();
    await eventually(() => expect(t.app.services.events.subscriberCount).toBe(1));
    await t.app.services.events.record({
      type: 'events.purged',
      source: 'system',
      severity: 'WARN',
      message: 'sdk one',
      details: { deleted: 1, olderThan: 'test' },
    });
    const { value } = await first;
    expect(value?.eventLogged).toMatchObject({ message: 'sdk one', severity: 'WARN', source: 'system' });
    await events.return?.();
    await eventually(() => expect(t.app.services.events.subscriberCount).toBe(0));
  });

  it('throws a typed UNAUTHENTICATED error for a wrong token', async () => {
    const events = client({ token: 'sg_wrong' }).healthChanged();
    const error = await rejection(events.next());
    expect(error.code).toBe('UNAUTHENTICATED');
  });

  it('reconnects after the server goes away and resumes eventLogged with no gap and no duplicate', async () => {
    const { port } = new URL(t.url);
    const relay = await startTcpProxy(Number(port));
    const sg = client({ url: `http://127.0.0.1:${relay.port}` });
    const bus = t.app.services.events;
    const emit = (n: number) =>
      bus.record({
        type: 'events.purged',
        source: 'system',
        severity: 'WARN',
        message: `resume #${n}`,
        details: { deleted: n, olderThan: 'test' },
      });
    const events = sg.eventLogged({ minSeverity: 'WARN', source: 'system' });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const { eventLogged } of events) {
        seen.push(eventLogged.message);
        if (eventLogged.message === 'resume #6') break;
      }
    })();
    await eventually(() => expect(bus.subscriberCount).toBe(1));
    await emit(1);
    await emit(2);
    await eventually(() => expect(seen).toEqual(['resume #1', 'resume #2']));

    relay.cut(); // the connection is reset; reconnect attempts are dropped until restore()
    await eventually(() => expect(bus.subscriberCount).toBe(0));
    await emit(3);
    await emit(4);
    relay.restore();
    await eventually(() => expect(bus.subscriberCount).toBe(1));
    await emit(5);
    await emit(6);
    await reading;
    expect(seen).toEqual(['resume #1', 'resume #2', 'resume #3', 'resume #4', 'resume #5', 'resume #6']);
  });
});

describe('the raw relay', () => {
  it('publishes frames and watches them as an operator, typed, until the session ends (4410)', async () => {
    const sg = client();
    const clientId = randomUUID();
    const { createSession } = await sg.createSession({ clientId });
    const watcher = await sg.sessions.watch(createSession.sessionId, 'ops-1');
    const publisher = await sg.sessions.publish(createSession.sessionId, clientId, createSession.streamKey);
    publisher.send('hello');
    publisher.send(new Uint8Array([0, 1, 255]));
    const frames = [(await watcher.next()).value, (await watcher.next()).value];
    expect(frames).toEqual([
      { binary: false, data: 'hello' },
      { binary: true, data: new Uint8Array([0, 1, 255]) },
    ]);
    const { sessions } = await sg.sessions({ status: 'ACTIVE' });
    expect(sessions.edges.map((e) => e.node.id)).toContain(createSession.sessionId);

    await sg.endSession({ id: createSession.sessionId });
    const closed = await watcher.closed;
    expect(closed).toMatchObject({ code: 4410, meaning: 'the session was ended while connected' });
    expect((await watcher.next()).done).toBe(true);
    expect((await publisher.closed).code).toBe(4410);
  });

  it('says why a connection was refused, with its typed close code', async () => {
    const sg = client();
    const clientId = randomUUID();
    const { createSession } = await sg.createSession({ clientId });
    // The key is checked once the WebSocket is open: the refusal is how it closes.
    const wrongKey = await sg.sessions.publish(createSession.sessionId, clientId, 'wrong-key');
    expect(await wrongKey.closed).toMatchObject({ code: 4403, meaning: expect.stringContaining('stream key') });
    const malformed = await sg.sessions.watch('not-a-session', 'ops-1');
    expect((await malformed.closed).code).toBe(4400);
    expect((await malformed.next()).done).toBe(true);
    // No server at all: the promise rejects, with the close it got.
    const nowhere = client({ url: 'http://127.0.0.1:1' }).sessions.watch(createSession.sessionId, 'ops-1');
    await expect(nowhere).rejects.toBeInstanceOf(RelayClosedError);
    await expect(nowhere).rejects.toMatchObject({ close: { code: 1006 } });
  });
});
