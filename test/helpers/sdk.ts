import { createStreamGateClient, type StreamGateClient, StreamGateError } from '@streamgate/client';
import { expect } from 'vitest';
import WebSocket from 'ws';
import type { TestApp } from './app.js';
import { dispose } from './leftovers.js';

/**
 * The SDK as a client of the test app (its admin token unless `token` says otherwise), closed
 * after the file. Reconnects are quick, so tests that cut connections stay short.
 */
export function sdkClient(app: TestApp, opts: { url?: string; token?: string } = {}): StreamGateClient {
  const client = createStreamGateClient({
    url: opts.url ?? app.url,
    token: opts.token ?? app.token,
    webSocketImpl: WebSocket,
    reconnect: { minDelayMs: 50, maxDelayMs: 200 },
  });
  return dispose(client, (c) => c.close());
}

/** The StreamGateError a call fails with (the test fails if it succeeds or fails otherwise). */
export async function rejection(promise: Promise<unknown>): Promise<StreamGateError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StreamGateError);
    return error as StreamGateError;
  }
  throw new Error('expected the call to fail');
}
