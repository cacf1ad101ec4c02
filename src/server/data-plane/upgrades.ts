import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { type Dispatcher, errors } from 'undici';
import { authorize } from '../http/auth.js';
import { flatHeaders, forwardedRequestHeaders } from '../http/forward.js';
import { endAndClose, isRefusal, type Refusal, refuseOnSocket } from '../http/respond.js';
import type { RouteContext } from './context.js';
import type { RequestForwarding } from './requests.js';
import { upstreamFailure } from './requests.js';
import { routeRequest, type UpstreamTarget, upstreamOf } from './routing.js';

/**
 * Upgrades (WebSocket) through the data plane: routed like any request, then the upgrade is sent
 * upstream through the same pool and policy; on `101` the two sockets are joined byte for byte,
 * so frames, pings and pongs and close codes pass untouched in both directions. An upstream that
 * answers anything else has that answer passed back, and the connection closes.
 */
export class UpgradeTunnels {
  private readonly open = new Set<Socket>();

  constructor(private readonly forwarding: RequestForwarding) {}

  get size(): number {
    return this.open.size;
  }

  /** Calls `done` once the exchange is over (tunnel closed, refusal sent or failure). */
  handle(req: IncomingMessage, socket: Socket, head: Buffer, context: RouteContext, done: () => void): void {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      this.open.delete(socket);
      done();
    };
    this.open.add(socket);
    socket.once('close', finish);
    socket.on('error', () => socket.destroy()); // a reset peer; `close` follows
    const routed = routeRequest(this.forwarding.routes, req);
    if (isRefusal(routed)) {
      refuseUpgrade(socket, context, routed);
      return;
    }
    context.route = routed;
    const target = upstreamOf(routed);
    if (!target.adminOnly) {
      this.dispatch(req, socket, head, context, target);
      return;
    }
    // A route made from a node leads to its API: admins only, as the /proxy/* passthrough.
    authorize(this.forwarding.auth, req, 'admin').then(
      (principal) => {
        if (isRefusal(principal)) refuseUpgrade(socket, context, principal);
        else if (!socket.destroyed) this.dispatch(req, socket, head, context, target);
      },
      () => socket.destroy(),
    );
  }

  /** Shutdown: every tunnel still open is cut (its peers see the connection close). */
  closeAll(): void {
    for (const socket of this.open) socket.destroy();
  }

  private dispatch(
    req: IncomingMessage,
    socket: Socket,
    head: Buffer,
    context: RouteContext,
    target: UpstreamTarget,
  ): void {
    const { agent, timeoutMs } = this.forwarding;
    context.upstream = target.origin;
    let controller: Dispatcher.DispatchController | undefined;
    let answered = false;
    const clientLeft = () => {
      if (!answered) controller?.abort(new errors.RequestAbortedError());
    };
    socket.once('close', clientLeft);
    agent.dispatch(
      {
        origin: target.origin,
        path: target.basePath + req.url,
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        headers: forwardedRequestHeaders(req, target.profile.request),
        upgrade: req.headers.upgrade ?? 'websocket',
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      },
      {
        onRequestStart(started) {
          controller = started;
          if (socket.destroyed) started.abort(new errors.RequestAbortedError());
        },
        onRequestUpgrade(started, statusCode, headers, upstream) {
          answered = true;
          context.status = statusCode;
          const raw = flatHeaders(started.rawHeaders, headers);
          socket.write(`HTTP/1.1 ${statusCode} Switching Protocols\r\n${headerLines(raw)}\r\n`);
          join(socket, upstream as Socket, head, context);
        },
        onResponseStart(started, statusCode, headers, statusMessage) {
          // The upstream said no to the upgrade: its answer goes back as it is, then the connection closes.
          if (statusCode < 200) return;
          answered = true;
          context.status = statusCode;
          const raw = target.profile.responseHeaders(flatHeaders(started.rawHeaders, headers));
          socket.write(
            `HTTP/1.1 ${statusCode} ${statusMessage || 'Upgrade Refused'}\r\n${headerLines(raw)}connection: close\r\n\r\n`,
          );
          socket.on('drain', () => started.resume());
        },
        onResponseData(started, chunk) {
          context.bytes += chunk.length;
          if (!socket.write(chunk)) started.pause();
        },
        onResponseEnd() {
          endAndClose(socket);
        },
        onResponseError(_, error) {
          if (socket.destroyed) return;
          if (answered) socket.destroy();
          else refuseUpgrade(socket, context, upstreamFailure(error, timeoutMs));
        },
      },
    );
  }
}

/**
 * Joins the client's socket and the upstream's: each one's bytes go to the other with
 * backpressure (pipe), one side ending ends the other once what is queued is written, and an
 * error on either closes both.
 */
function join(client: Socket, upstream: Socket, head: Buffer, context: RouteContext): void {
  upstream.setNoDelay(true);
  client.setNoDelay(true);
  if (client.destroyed) {
    upstream.destroy();
    return;
  }
  upstream.on('data', (chunk: Buffer) => {
    context.bytes += chunk.length;
  });
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
  upstream.once('close', () => client.destroySoon());
  client.once('close', () => upstream.destroySoon());
  if (head.length > 0) upstream.write(head);
  upstream.pipe(client);
  client.pipe(upstream);
}

function headerLines(raw: string[]): string {
  let lines = '';
  for (let i = 0; i < raw.length; i += 2) lines += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return lines;
}

/** An answer of our own on a socket that asked to upgrade; the connection closes after it. */
function refuseUpgrade(socket: Socket, context: RouteContext, refusal: Refusal): void {
  context.error = refusal.code;
  context.status = refusal.status;
  context.bytes = refuseOnSocket(socket, refusal);
}
