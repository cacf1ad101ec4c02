import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { Env } from '../../env.js';
import type { Logger } from '../../lib/logger.js';
import { type AuthService, bearerToken, hasRole, type Principal } from '../auth/index.js';
import type { EventBus } from '../events/index.js';
import { CloseCode, CloseReason } from './close-codes.js';
import type { Backlog, Channel, Frame, FrameSubscriber, Publisher } from './hub.js';
import { parseStreamTarget, type StreamTarget } from './input.js';
import { type AttachResult, type Lease, type LiveSessions, MAX_QUEUED_FRAMES } from './live.js';
import { isPublisherId, streamKeyMatches } from './stream-keys.js';

export interface StreamRelayOptions {
  env: Env;
  log: Logger;
  events: EventBus;
  auth: AuthService;
  /** What is live on this instance: the relay attaches sockets to it. */
  live: LiveSessions;
}

/**
 * How long a socket we closed may take to complete the close handshake before it is cut. A
 * dropped (slow) operator's close frame waits behind its whole backlog; ws' own limit is 30 s.
 */
const CLOSE_GRACE_MS = 5_000;

/**
 * The raw WebSocket side of live sessions: `/ws/stream/{sessionId}/{userId}` upgrades, the
 * publisher/operator handshake, keepalive. A thin adapter: what happens to frames is the hub's
 * business (hub.ts), what it means for the database is LiveSessions' (live.ts).
 */
export class StreamRelay {
  readonly live: LiveSessions;
  private readonly wss: WebSocketServer;
  private readonly awaitingPong = new WeakSet<WebSocket>();
  private keepalive: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(readonly options: StreamRelayOptions) {
    const { env } = options;
    this.live = options.live;
    // maxPayload: ws closes a socket that sends a larger message with 1009 itself, before
    // buffering it. No compression: it would cost a copy (and CPU) per operator per frame.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: env.WS_MAX_MESSAGE_SIZE,
      perMessageDeflate: false,
      clientTracking: true,
    });
  }

  /** Takes an HTTP upgrade for `/ws/stream/…`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
  }

  /** Shutdown: closes every relay socket with 1001 and ends every frame subscription. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.keepalive);
    // The hub closes publishers and operators (1001) and saves state; sockets still being set up
    // are closed here.
    await this.live.close();
    const open = [...this.wss.clients];
    for (const ws of open) closeSocket(ws, CloseCode.GoingAway);
    await Promise.all(open.map((ws) => closed(ws)));
    this.wss.close();
  }

  /** Sockets still open after close() (cut at the shutdown deadline). */
  terminate(): void {
    for (const ws of this.wss.clients) ws.terminate();
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    // Nothing is read until the peer is authenticated and attached: a publisher's first frames
    // wait in the socket, not in our memory.
    ws.pause();
    ws.on('pong', () => this.awaitingPong.delete(ws));
    this.startKeepalive();
    let role: Role = { kind: 'pending' };
    ws.on('error', (error: Error & { code?: string }) => {
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' && role.kind === 'publisher') {
        this.options.events.emit({
          type: 'session.frame_too_large',
          source: 'sessions',
          severity: 'WARN',
          message: `session ${role.channel.sessionId}: publisher sent a frame over ${this.options.env.WS_MAX_MESSAGE_SIZE} bytes (closed 1009)`,
          details: { sessionId: role.channel.sessionId, limitBytes: this.options.env.WS_MAX_MESSAGE_SIZE },
        });
      }
      // ws closes the socket itself (1009 for an oversize frame, 1002/1007 for protocol errors).
      this.options.log.debug({ err: error }, 'relay socket error');
    });
    ws.once('close', (code: number) => {
      if (role.kind === 'publisher') this.live.detachPublisher(role.channel, role.publisher, code);
      if (role.kind === 'operator') this.live.detachSubscriber(role.channel, role.operator, code);
      role = { kind: 'gone' };
    });

    const target = parseStreamTarget(req.url ?? '');
    if (!target) {
      closeSocket(ws, CloseCode.MalformedRequest);
      return;
    }
    this.connect(ws, req, target, (attached) => {
      if (role.kind === 'gone') return false; // closed while we were checking
      role = attached;
      return true;
    }).catch((error: unknown) => {
      this.options.log.error({ err: error, sessionId: target.sessionId }, 'relay connection failed');
      closeSocket(ws, CloseCode.InternalError);
    });
  }

  /** Authenticates the socket and attaches it to its session as publisher or operator. */
  /**
   * Credentials are checked before the session is looked up, so that without valid ones an
   * unknown session and a real one are refused alike (and cost no database read): no key and no
   * token is 4401; a token that is not valid is 4403. A key can only be checked against its
   * session, so a key for a session that does not exist is 4403 as well, not 4404.
   */
  private async connect(
    ws: WebSocket,
    req: IncomingMessage,
    target: StreamTarget,
    attach: (role: Role) => boolean,
  ): Promise<void> {
    const token = bearerToken(req.headers.authorization) ?? target.accessToken;
    if (!token && !target.key) return closeSocket(ws, CloseCode.MissingCredentials);
    let principal: Principal | null = null;
    if (token) {
      const result = await this.options.auth.authenticate(token, req.socket.remoteAddress);
      if (result.kind === 'unavailable' || result.kind === 'limited') return closeSocket(ws, CloseCode.TryAgainLater);
      // Watching a session needs the operator role; a viewer's token counts as no credentials.
      principal = result.kind === 'principal' && hasRole(result.principal.role, 'operator') ? result.principal : null;
      if (!principal && !target.key) return closeSocket(ws, CloseCode.Forbidden);
    }
    const lease = await this.live.open(target.sessionId);
    if (!lease) {
      if (this.closing) return closeSocket(ws, CloseCode.GoingAway);
      if (principal) return closeSocket(ws, CloseCode.SessionNotFound);
      // Only the key of a session that ended proves the caller knew it: then it may hear so.
      const ended = target.key ? await this.live.finishedStreamKeyHash(target.sessionId) : null;
      const knew = ended !== null && target.key !== null && streamKeyMatches(target.key, ended);
      return closeSocket(ws, knew ? CloseCode.SessionNotFound : CloseCode.Forbidden);
    }
    try {
      if (isPublisherId(target.userId, lease.session.clientId)) {
        await this.connectPublisher(ws, lease, target, attach);
      } else if (!principal) {
        closeSocket(ws, token ? CloseCode.Forbidden : CloseCode.MissingCredentials);
      } else {
        await this.connectOperator(ws, lease, target, principal, attach);
      }
    } finally {
      lease.release();
    }
  }

  private async connectPublisher(
    ws: WebSocket,
    lease: Lease,
    target: StreamTarget,
    attach: (role: Role) => boolean,
  ): Promise<void> {
    if (!target.key) return closeSocket(ws, CloseCode.MissingCredentials);
    if (!streamKeyMatches(target.key, lease.session.streamKeyHash)) return closeSocket(ws, CloseCode.Forbidden);
    const { channel } = lease;
    const publisher: Publisher = { close: (code) => closeSocket(ws, code) };
    const result = await this.live.attachPublisher(lease, publisher);
    if (result !== 'ok') return closeSocket(ws, this.refusal(result));
    if (!attach({ kind: 'publisher', channel, publisher })) {
      this.live.detachPublisher(channel, publisher, 1006);
      return;
    }
    // Frames arrive as Buffers (binary and text alike); the hub relays this very Buffer.
    ws.on('message', (data: RawData, isBinary: boolean) => {
      channel.publish(publisher, data as Buffer, isBinary);
    });
    ws.resume();
  }

  private async connectOperator(
    ws: WebSocket,
    lease: Lease,
    target: StreamTarget,
    principal: Principal,
    attach: (role: Role) => boolean,
  ): Promise<void> {
    const { channel } = lease;
    const operator = new SocketOperator(ws, target.userId, this.options.env.SESSION_OPERATOR_MAX_BUFFER);
    const result = await this.live.attachOperator(lease, operator, { id: principal.id, name: principal.name });
    if (result !== 'ok') return closeSocket(ws, this.refusal(result));
    if (!attach({ kind: 'operator', channel, operator })) {
      this.live.detachSubscriber(channel, operator, 1006);
      return;
    }
    // Revoking (or the expiry of) the operator's token closes the socket as a bad token would.
    const unwatch = this.options.auth.watch(principal, () => closeSocket(ws, CloseCode.Forbidden));
    ws.once('close', unwatch);
    // Operators only listen: what they send is read (so pongs and close frames get through)
    // and thrown away, never relayed.
    ws.resume();
  }

  private refusal(result: Exclude<AttachResult, 'ok'>): CloseCode {
    switch (result) {
      case 'taken':
        return CloseCode.PublisherConflict;
      case 'full':
        return CloseCode.TooManyOperators;
      case 'unavailable':
        return CloseCode.TryAgainLater;
      case 'gone':
        return this.closing ? CloseCode.GoingAway : CloseCode.SessionNotFound;
    }
  }

  /**
   * Every WS_PING_INTERVAL_MS each socket is pinged; one that has not answered the previous ping
   * is cut. A dead peer is therefore gone within two intervals (20 s by default).
   */
  private startKeepalive(): void {
    if (this.keepalive || this.closing) return;
    this.keepalive = setInterval(() => {
      if (this.wss.clients.size === 0) {
        clearInterval(this.keepalive);
        this.keepalive = undefined;
        return;
      }
      for (const ws of this.wss.clients) {
        if (this.awaitingPong.has(ws)) {
          ws.terminate();
          continue;
        }
        this.awaitingPong.add(ws);
        ws.ping();
      }
    }, this.options.env.WS_PING_INTERVAL_MS);
    this.keepalive.unref();
  }
}

type Role =
  | { kind: 'pending' }
  | { kind: 'gone' }
  | { kind: 'publisher'; channel: Channel; publisher: Publisher }
  | { kind: 'operator'; channel: Channel; operator: SocketOperator };

/**
 * A raw operator socket as a hub subscriber. Every operator is sent the same Buffer: ws writes an
 * unmasked server frame as a small header plus that Buffer, without copying it.
 *
 * The bound, SESSION_OPERATOR_MAX_BUFFER (8 MiB by default), is checked against ws'
 * `bufferedAmount` (bytes accepted but not yet handed to the kernel) before each send. Because
 * frames are shared, N stalled operators pin at most ~bound bytes of *distinct* frames between
 * them (they lag over the same recent frames), not N × bound; 8 MiB is ~4 s of a 64 KiB × 30 fps
 * stream, enough to ride out a congested link, short enough that a stalled peer is noticed fast.
 * A single frame larger than the bound still goes to an operator whose buffer is empty, so a
 * bound below WS_MAX_MESSAGE_SIZE cannot starve everyone of large frames.
 */
class SocketOperator implements FrameSubscriber {
  readonly isOperator = true;
  /** Sends not yet handed to the kernel (bounded too: see MAX_QUEUED_FRAMES). */
  private inFlight = 0;
  private readonly sent = () => {
    this.inFlight--;
  };

  constructor(
    private readonly ws: WebSocket,
    readonly userId: string,
    private readonly maxBytes: number,
  ) {}

  offer(frame: Frame): Backlog | null {
    // Closing already (its 'close' event will detach it): ws would only count the frame as
    // buffered and fail it, which would look like a slow operator.
    if (this.ws.readyState !== this.ws.OPEN) return null;
    const buffered = this.ws.bufferedAmount;
    if ((buffered > 0 && buffered + frame.size > this.maxBytes) || this.inFlight >= MAX_QUEUED_FRAMES) {
      return { bytes: buffered, frames: this.inFlight };
    }
    this.inFlight++;
    this.ws.send(frame.payload, { binary: frame.binary }, this.sent);
    return null;
  }

  close(code: CloseCode): void {
    closeSocket(this.ws, code);
  }
}

/** Closes with a code and its reason; cuts the socket if the handshake does not finish in time. */
function closeSocket(ws: WebSocket, code: CloseCode): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.close(code, CloseReason[code]);
  // A socket refused during the handshake is still paused: it must read the peer's close reply.
  if (ws.isPaused) ws.resume();
  const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
  timer.unref();
  ws.once('close', () => clearTimeout(timer));
}

function closed(ws: WebSocket): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  return new Promise((resolve) => ws.once('close', () => resolve()));
}
