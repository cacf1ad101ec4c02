import { randomUUID } from 'node:crypto';
import type { StreamGateClient } from '@streamgate/client';
import type { Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { TestApp } from '../helpers/app.js';
import { dispose } from '../helpers/leftovers.js';
import { sdkClient } from '../helpers/sdk.js';
import { readSse } from '../helpers/sse.js';

export const STREAM_FRAMES = `
  subscription Frames($sessionId: ID!) {
    streamFrames(sessionId: $sessionId) { sessionId seq receivedAt size binary data }
  }
`;

export interface NewSession {
  sessionId: string;
  clientId: string;
  streamKey: string;
}

/** One SDK client per test app (the admin token), for the helpers below. */
const clients = new WeakMap<TestApp, StreamGateClient>();
export function sdkOf(app: TestApp): StreamGateClient {
  let client = clients.get(app);
  if (!client) {
    client = sdkClient(app);
    clients.set(app, client);
  }
  return client;
}

export async function newSession(app: TestApp): Promise<NewSession> {
  const clientId = randomUUID();
  const { createSession } = await sdkOf(app).createSession({ clientId });
  return { sessionId: createSession.sessionId, clientId, streamKey: createSession.streamKey };
}

export async function sessionState(app: TestApp, id: string) {
  const { session } = await sdkOf(app).session({ id });
  if (!session) throw new Error(`no session ${id}`);
  return session;
}

export async function endSession(app: TestApp, id: string) {
  return (await sdkOf(app).endSession({ id })).endSession;
}

export { eventually } from '../helpers/eventually.js';

export interface Received {
  data: Buffer;
  binary: boolean;
}

/** Collects what arrives and lets tests wait for a condition on it. */
class Collector<T> {
  readonly items: T[] = [];
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  constructor(private readonly isText: (item: T, text: string) => boolean) {}

  push(item: T): void {
    this.items.push(item);
    this.waiters = this.waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  receivedCount(count: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor(() => this.items.length >= count, timeoutMs);
  }

  hasText(text: string): boolean {
    return this.items.some((item) => this.isText(item, text));
  }

  clear(): void {
    this.items.length = 0;
  }

  waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`condition not met after ${this.items.length} messages`)),
        timeoutMs,
      );
      this.waiters.push({
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

/** Anything that receives a session's frames (raw operator, GraphQL subscription). */
export interface Listener {
  receivedCount(count: number, timeoutMs?: number): Promise<void>;
  hasText(text: string): boolean;
  waitFor(check: () => boolean, timeoutMs?: number): Promise<void>;
  clear(): void;
}

/** A raw relay socket that records what it receives and how it closed. */
export class RawPeer extends Collector<Received> implements Listener {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    super((m, text) => !m.binary && m.data.toString() === text);
    this.ws = new WebSocket(url, options);
    this.ws.on('error', () => {}); // the close code is what tests look at
    this.opened = new Promise((resolve) => this.ws.once('open', () => resolve()));
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    this.ws.on('message', (data, isBinary) => this.push({ data: data as Buffer, binary: isBinary }));
    dispose(this, (peer) => peer.ws.terminate());
  }

  /** What arrived since the last clear(). */
  get received(): Received[] {
    return this.items;
  }

  /** Sends and resolves once ws has handed the message to the socket. */
  send(data: Buffer | string, binary = typeof data !== 'string'): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(data, { binary }, (e) => (e ? reject(e) : resolve())));
  }

  async close(): Promise<{ code: number; reason: string }> {
    this.ws.close(1000);
    return this.closed;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }
}

/**
 * Makes sure every listener is attached (operator handshakes and subscriptions complete
 * asynchronously): sends `prime-N` frames until each has received one, then a `sync` frame, waits
 * for it everywhere and clears what they received. Returns the frames and bytes it sent.
 */
export async function primed(pub: RawPeer, listeners: Listener[]): Promise<{ frames: number; bytes: number }> {
  await pub.opened;
  let frames = 0;
  let bytes = 0;
  const send = async (text: string) => {
    await pub.send(text);
    frames++;
    bytes += Buffer.byteLength(text);
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`listeners still not attached after ${frames} priming frames`);
    await send(`prime-${frames}`);
    try {
      await Promise.all(listeners.map((l) => l.receivedCount(1, 100)));
      break;
    } catch {
      // not everyone is attached yet
    }
  }
  await send('sync');
  await Promise.all(listeners.map((l) => l.waitFor(() => l.hasText('sync'))));
  for (const l of listeners) l.clear();
  return { frames, bytes };
}

export const relayBase = (app: TestApp) => `${app.url.replace('http', 'ws')}/ws/stream`;

export function publisher(app: TestApp, s: NewSession, key: string | null = s.streamKey): RawPeer {
  const query = key === null ? '' : `?key=${encodeURIComponent(key)}`;
  return new RawPeer(`${relayBase(app)}/${s.sessionId}/${s.clientId}${query}`);
}

export function operator(
  app: TestApp,
  s: Pick<NewSession, 'sessionId'>,
  userId: string,
  auth: { header?: string | null; query?: string } = {},
  options: WebSocket.ClientOptions = {},
): RawPeer {
  const header = auth.header === undefined ? `Bearer ${app.token}` : auth.header;
  const query = auth.query ? `?access_token=${encodeURIComponent(auth.query)}` : '';
  return new RawPeer(`${relayBase(app)}/${s.sessionId}/${encodeURIComponent(userId)}${query}`, {
    ...options,
    headers: header === null ? {} : { authorization: header },
  });
}

export interface FrameResult {
  sessionId: string;
  seq: number;
  receivedAt: string;
  size: number;
  binary: boolean;
  data: string;
}

/** Everything a `streamFrames` subscription delivers, and how it ended. */
export class FrameSubscription extends Collector<FrameResult> implements Listener {
  readonly errors: unknown[] = [];
  /** Resolves when the subscription completes or errors. */
  readonly done: Promise<void>;
  finish!: () => void;

  constructor() {
    super((f, text) => !f.binary && f.data === text);
    this.done = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  /** What arrived since the last clear(). */
  get frames(): FrameResult[] {
    return this.items;
  }
}

export function subscribeOverWs(client: Client, sessionId: string): FrameSubscription {
  const sub = new FrameSubscription();
  client.subscribe<{ streamFrames: FrameResult }>(
    { query: STREAM_FRAMES, variables: { sessionId } },
    {
      next: (result) => {
        if (result.errors) sub.errors.push(result.errors);
        if (result.data?.streamFrames) sub.push(result.data.streamFrames);
      },
      error: (e) => {
        sub.errors.push(e);
        sub.finish();
      },
      complete: () => sub.finish(),
    },
  );
  return sub;
}

/** `streamFrames` over SSE (GET … Accept: text/event-stream), parsed as it streams. */
export function subscribeOverSse(app: TestApp, sessionId: string): FrameSubscription {
  const sub = new FrameSubscription();
  const controller = new AbortController();
  const params = new URLSearchParams({ query: STREAM_FRAMES, variables: JSON.stringify({ sessionId }) });
  void (async () => {
    try {
      const res = await app.fetch(`/graphql?${params}`, {
        headers: { accept: 'text/event-stream' },
        signal: controller.signal,
      });
      if (!res.body) throw new Error(`no body (${res.status})`);
      for await (const { data } of readSse(res.body)) {
        if (!data) continue;
        const result = JSON.parse(data) as { data?: { streamFrames?: FrameResult }; errors?: unknown[] };
        if (result.errors) sub.errors.push(result.errors);
        if (result.data?.streamFrames) sub.push(result.data.streamFrames);
      }
    } catch (e) {
      if (!controller.signal.aborted) sub.errors.push(e);
    }
    sub.finish();
  })();
  dispose(controller, (c) => c.abort());
  return sub;
}
