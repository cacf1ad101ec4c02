// STUB — replaced by the live sessions work (issue 3). Signatures are the contract other modules use.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Db } from '../../db/client.js';
import type { Env } from '../../env.js';
import type { Logger } from '../../lib/logger.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { EventBus } from '../events/bus.js';

export interface StreamRelayOptions {
  env: Env;
  db: Db;
  log: Logger;
  events: EventBus;
  tokens: TokenVerifier;
}

export class StreamRelay {
  constructor(readonly options: StreamRelayOptions) {}
  /** Takes an HTTP upgrade for `/ws/stream/…`. */
  handleUpgrade(_req: IncomingMessage, socket: Duplex, _head: Buffer): void {
    socket.destroy();
  }
  /** Shutdown: closes every relay socket with 1001 and ends every frame subscription. */
  async close(): Promise<void> {}
  /** Sockets still open after close() (cut at the shutdown deadline). */
  terminate(): void {}
}
