/**
 * The raw stream relay (docs/relay.md): a publisher sends frames over a WebSocket, StreamGate
 * relays each one, in order and byte for byte, to every operator watching.
 */

/** Every close code the relay uses, and what it means for the client. */
export const RELAY_CLOSE_CODES = {
  1000: 'closed normally',
  1001: 'the server is shutting down or restarting: reconnect after a short delay',
  1006: 'the connection was lost without a close frame',
  1009: 'frame larger than WS_MAX_MESSAGE_SIZE: send smaller frames',
  1011: 'unexpected server error: reconnect with backoff',
  1013: 'the token cannot be checked right now: retry later',
  4400: 'malformed path',
  4401: 'missing credentials',
  4403: 'wrong stream key, invalid or revoked token, or a token below the operator role',
  4404: 'no such session, or it is finished',
  4408: 'operator too slow: reconnect (frames in between are not replayed)',
  4409: 'a publisher is already connected to this session: retry with backoff',
  4410: 'the session was ended while connected',
  4429: 'SESSION_MAX_OPERATORS operators are connected already: retry later',
} as const;

export type RelayCloseCode = keyof typeof RELAY_CLOSE_CODES;

/** How a relay socket ended: the code (typed when it is one of the relay's), the reason, and what it means. */
export interface RelayClose {
  code: RelayCloseCode | (number & {});
  reason: string;
  meaning: string;
}

/** One frame, text as text and binary as binary. */
export type RelayFrame = { binary: false; data: string } | { binary: true; data: Uint8Array };

export interface Publisher {
  /** Sends one frame; every operator receives it as sent. */
  send(frame: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Resolves when the socket has closed, with why. */
  readonly closed: Promise<RelayClose>;
}

export interface Watcher extends AsyncIterableIterator<RelayFrame> {
  /** Resolves when the socket has closed, with why (iteration then ends). */
  readonly closed: Promise<RelayClose>;
  close(): void;
}

export interface Relay {
  /**
   * Connects as the session's publisher (`clientId` and the `streamKey` from `createSession`).
   * Resolves once the socket is open; the server checks the key then, so a refusal (4403, 4404,
   * 4409…) arrives as `closed`. Rejects with a RelayClosedError when the socket never opens.
   */
  publish(sessionId: string, clientId: string, streamKey: string): Promise<Publisher>;
  /**
   * Connects as an operator (with the client's token) and yields every frame from now on; the
   * iteration ends when the socket closes (`closed` says why, e.g. 4410 when the session ended).
   */
  watch(sessionId: string, userId: string): Promise<Watcher>;
}

/** A relay socket that closed before it opened (server unreachable, or the upgrade refused). */
export class RelayClosedError extends Error {
  override name = 'RelayClosedError';
  constructor(readonly close: RelayClose) {
    super(`relay closed with ${close.code}: ${close.meaning}${close.reason ? ` (${close.reason})` : ''}`);
  }
}

/** The parts of the WebSocket API the relay uses (browsers' and the `ws` package's). */
interface SocketLike {
  binaryType: string;
  readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: never) => void): void;
}
type SocketConstructor = new (url: string) => SocketLike;

export function createRelay(options: { baseUrl: string; token: string; webSocketImpl: () => unknown }): Relay {
  const wsBase = options.baseUrl.replace(/^http/, 'ws');
  const path = (sessionId: string, userId: string) =>
    `${wsBase}/ws/stream/${encodeURIComponent(sessionId)}/${encodeURIComponent(userId)}`;

  /** Opens a socket; resolves once open, rejects with the close when it closes first. */
  const open = (url: string): Promise<{ socket: SocketLike; closed: Promise<RelayClose> }> =>
    new Promise((resolve, reject) => {
      const Socket = options.webSocketImpl() as SocketConstructor;
      const socket = new Socket(url);
      socket.binaryType = 'arraybuffer';
      let opened = false;
      const closed = new Promise<RelayClose>((settle) => {
        socket.addEventListener('close', (event: { code: number; reason: string }) => {
          const close = describeClose(event.code, event.reason);
          settle(close);
          if (!opened) reject(new RelayClosedError(close));
        });
      });
      socket.addEventListener('error', () => {}); // a close event follows
      socket.addEventListener('open', () => {
        opened = true;
        resolve({ socket, closed });
      });
    });

  return {
    async publish(sessionId, clientId, streamKey) {
      const { socket, closed } = await open(`${path(sessionId, clientId)}?key=${encodeURIComponent(streamKey)}`);
      return {
        send: (frame) => socket.send(frame),
        close: (code = 1000, reason = '') => socket.close(code, reason),
        closed,
      };
    },

    async watch(sessionId, userId) {
      // Browsers cannot set headers on a WebSocket: the token goes as the documented query parameter.
      const url = `${path(sessionId, userId)}?access_token=${encodeURIComponent(options.token)}`;
      const { socket, closed } = await open(url);
      const frames: RelayFrame[] = [];
      let ended = false;
      let wake: (() => void) | undefined;
      socket.addEventListener('message', (event: { data: string | ArrayBuffer }) => {
        frames.push(
          typeof event.data === 'string'
            ? { binary: false, data: event.data }
            : { binary: true, data: new Uint8Array(event.data) },
        );
        wake?.();
      });
      void closed.then(() => {
        ended = true;
        wake?.();
      });
      const watcher: Watcher = {
        closed,
        close: () => socket.close(1000, ''),
        [Symbol.asyncIterator]() {
          return watcher;
        },
        async next() {
          while (frames.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
          const frame = frames.shift();
          return frame ? { value: frame, done: false } : { value: undefined, done: true };
        },
        async return() {
          ended = true;
          frames.length = 0;
          socket.close(1000, '');
          wake?.();
          return { value: undefined, done: true };
        },
      };
      return watcher;
    },
  };
}

function describeClose(code: number, reason: string): RelayClose {
  const meaning = (RELAY_CLOSE_CODES as Record<number, string>)[code] ?? 'closed';
  return { code: code as RelayCloseCode, reason, meaning };
}
