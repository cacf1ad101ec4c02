import { connect, isIP, type Socket } from 'node:net';
import { OutboundDeniedError, type OutboundPolicy } from '../../../lib/outbound.js';
import type { StreamUpstream } from '../types.js';

export interface PipeOptions {
  policy?: Pick<OutboundPolicy, 'checkLiteral' | 'lookup'>;
  /** Longest wait for the upstream to accept the connection. */
  connectTimeoutMs: number;
  /** No byte either way for this long closes both sides. */
  idleTimeoutMs: number;
}

export interface PipeHooks {
  /** The upstream accepted: bytes flow. */
  connected(): void;
  /** The upstream could not be reached (refused, timed out, denied by the policy); the client was reset. */
  failed(error: Error): void;
  /** Both sides are closed. */
  closed(): void;
}

/**
 * Joins a client connection to `upstream`, byte for byte, both ways. `pipe` gives backpressure (a
 * slow reader pauses the other side, so memory stays at a socket buffer or two per direction) and
 * passes a half-close on (one side's FIN becomes an `end()` towards the other, which may go on
 * sending). A reset or error on one side resets the other, so neither is left waiting. The client
 * socket must have been accepted with `allowHalfOpen: true`.
 */
export function pipeToUpstream(client: Socket, upstream: StreamUpstream, options: PipeOptions, hooks: PipeHooks): void {
  const { host, port } = upstream;
  const refused = options.policy?.checkLiteral(host, port);
  if (refused) {
    client.resetAndDestroy();
    hooks.failed(new OutboundDeniedError(host, port, refused));
    hooks.closed();
    return;
  }
  const target = connect({
    host,
    port,
    // A name is judged by the policy on each address it resolves to (an IP literal above).
    lookup: isIP(host) ? undefined : options.policy?.lookup(port),
    allowHalfOpen: true,
    noDelay: true,
  });
  client.setNoDelay(true);

  let connected = false;
  let pending = 2;
  const onClose = () => {
    if (--pending === 0) hooks.closed();
  };
  client.once('close', onClose);
  target.once('close', onClose);

  // Until the upstream accepts, the client's first bytes wait in the upstream socket's buffer
  // (bounded: `pipe` pauses the client at its high-water mark).
  client.pipe(target);
  target.pipe(client);

  target.setTimeout(options.connectTimeoutMs, () => {
    target.destroy(new Error(`no connection within ${options.connectTimeoutMs} ms`));
  });
  target.once('connect', () => {
    connected = true;
    target.setTimeout(0);
    // Any byte either way passes through the client socket (read or written), so its idle
    // timer alone says when the connection is idle in both directions.
    client.setTimeout(options.idleTimeoutMs, () => {
      client.destroy();
      target.destroy();
    });
    hooks.connected();
  });
  target.on('error', (error: Error) => {
    if (!connected) hooks.failed(error);
    // A reset (not a FIN) tells the client the stream broke rather than ended.
    if (!client.destroyed) client.resetAndDestroy();
  });
  client.on('error', () => {
    if (!target.destroyed) target.resetAndDestroy();
  });
  // `pipe` ends the other side when one ends cleanly, and that side then closes once its last
  // bytes are flushed; a side destroyed without an end (an error, our idle timeout) takes the
  // other with it.
  client.once('close', () => {
    if (!target.writableEnded) target.destroy();
  });
  target.once('close', () => {
    if (!client.writableEnded) client.destroy();
  });
}
