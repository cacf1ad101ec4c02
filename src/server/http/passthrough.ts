import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import {
  classifyNetworkError,
  describeNetworkError,
  kindFromPathSegment,
  NodeApiClient,
  type NodeDirectory,
  type NodeEndpoint,
} from '../../modules/nodes/index.js';
import { sendError } from './respond.js';

/**
 * `ANY /proxy/{streamers|caches|slbs}/{id}/{path…}`: a raw, streamed passthrough to a node's own
 * API. The caller is authenticated before this runs; the node's address comes from the
 * NodeDirectory, which every change to a node updates before the change is acknowledged.
 */

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection; `expect` is answered by us.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
// Our own credentials never reach a node; `host` is the node's, set by the HTTP client.
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'authorization', 'cookie', 'host', 'expect']);

const PATH = /^\/proxy\/([^/?#]+)\/([^/?#]+)(\/[^?#]*)?(\?[^#]*)?$/;

export interface PassthroughOptions {
  nodes: NodeDirectory;
  agent: Dispatcher;
  timeoutMs: number;
}

export function parsePassthroughPath(rawUrl: string) {
  const match = PATH.exec(rawUrl);
  if (!match) return null;
  const [, kindSegment = '', id = '', path = '/', query = ''] = match;
  return { kind: kindFromPathSegment(kindSegment), id: decodeURIComponent(id), upstreamPath: path + query };
}

export function createPassthrough({ nodes, agent, timeoutMs }: PassthroughOptions) {
  return async function passthrough(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = safeParse(req.url ?? '');
    let endpoint: NodeEndpoint | null;
    try {
      endpoint = target?.kind ? await nodes.find(target.id, target.kind) : null;
    } catch {
      sendError(res, 503, 'REGISTRY_UNAVAILABLE', 'the node registry cannot be read right now');
      return;
    }
    if (!target || !endpoint) {
      sendError(res, 404, 'NOT_FOUND', 'no such node');
      return;
    }
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    try {
      await new NodeApiClient(endpoint, agent).proxyRequest(
        {
          method: req.method ?? 'GET',
          path: target.upstreamPath,
          headers: forwardedRequestHeaders(req),
          body: hasBody ? req : null,
          timeoutMs,
        },
        res,
        untrustedResponseHeaders,
      );
    } catch (error) {
      if (res.destroyed) return; // the caller went away; nothing to answer
      const failure = classifyNetworkError(error);
      const reason = describeNetworkError(error, timeoutMs);
      if (failure === 'timeout') sendError(res, 504, 'UPSTREAM_TIMEOUT', `node did not answer: ${reason}`);
      else if (failure === 'forbidden')
        sendError(res, 403, 'UPSTREAM_FORBIDDEN', `node not reachable from here: ${reason}`);
      else sendError(res, 502, 'UPSTREAM_UNAVAILABLE', `node unreachable: ${reason}`);
    }
  };
}

function safeParse(rawUrl: string) {
  try {
    return parsePassthroughPath(rawUrl);
  } catch {
    return null; // malformed percent-encoding in the id
  }
}

/**
 * The caller's headers as they came (order, case, repeats), minus what must not reach the node,
 * plus `X-Forwarded-For` (the caller appended to any chain it sent) and our own `-Proto` and `-Host`.
 */
function forwardedRequestHeaders(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const listedInConnection = connectionTokens(req.headers.connection);
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (NOT_FORWARDED.has(lower) || lower.startsWith('x-forwarded-') || listedInConnection?.has(lower)) continue;
    headers.push(name, raw[i + 1] as string);
  }
  const client = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  headers.push('x-forwarded-for', prior ? `${prior}, ${client}` : client, 'x-forwarded-proto', 'http');
  if (req.headers.host) headers.push('x-forwarded-host', req.headers.host);
  return headers;
}

/**
 * A node's answer is served on our origin but is not ours to trust: no cookies for our origin, no
 * content sniffing, and a sandbox CSP, so a page a node returns cannot script against
 * StreamGate in an operator's browser. Replaces whatever the node said about the two headers.
 */
function untrustedResponseHeaders(raw: string[]): string[] {
  const headers = withoutHopByHop(raw, UNTRUSTED);
  headers.push('x-content-type-options', 'nosniff', 'content-security-policy', 'sandbox');
  return headers;
}

const UNTRUSTED = new Set(['set-cookie', 'x-content-type-options', 'content-security-policy']);

/**
 * The node's raw headers minus hop-by-hop ones, including those its `Connection` header names:
 * they describe the node→StreamGate connection, not ours to the caller (RFC 9110 §7.6.1).
 */
function withoutHopByHop(raw: string[], alsoDropped: ReadonlySet<string>): string[] {
  const connection: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === 'connection') connection.push(raw[i + 1] as string);
  }
  const listedInConnection = connectionTokens(connection.join(','));
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(lower) || alsoDropped.has(lower) || listedInConnection?.has(lower)) continue;
    headers.push(raw[i] as string, raw[i + 1] as string);
  }
  return headers;
}

/**
 * Header names listed in a `Connection` header, lower-cased; undefined when it lists none beyond
 * the usual `keep-alive`/`close` (the common case, kept cheap).
 */
function connectionTokens(connection: string | undefined): Set<string> | undefined {
  if (!connection || connection === 'keep-alive' || connection === 'close') return undefined;
  return new Set(connection.split(',').map((h) => h.trim().toLowerCase()));
}
