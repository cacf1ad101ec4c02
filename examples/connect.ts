import { createStreamGateClient } from '@streamgate/client';
import WebSocket from 'ws';

/**
 * The client every example uses: STREAMGATE_URL (default http://localhost:4000) and
 * STREAMGATE_TOKEN (an API token: `streamgate token create --name examples --role admin`).
 * Node 20 has no global WebSocket, so the `ws` package provides it; browsers and Node ≥ 22 need
 * no `webSocketImpl`.
 */
export function connect() {
  const token = process.env.STREAMGATE_TOKEN;
  if (!token) {
    console.error('set STREAMGATE_TOKEN to an API token (and STREAMGATE_URL if not http://localhost:4000)');
    process.exit(2);
  }
  return createStreamGateClient({
    url: process.env.STREAMGATE_URL ?? 'http://localhost:4000',
    token,
    webSocketImpl: globalThis.WebSocket ?? WebSocket,
  });
}

/** Seconds an example that follows a live stream keeps listening (STREAMGATE_EXAMPLE_SECONDS, default 10). */
export const listenSeconds = Number(process.env.STREAMGATE_EXAMPLE_SECONDS ?? 10);
