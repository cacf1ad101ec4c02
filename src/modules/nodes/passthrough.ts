import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Db } from '../../db/client.js';
import { sendError } from '../../http/respond.js';
import { classifyNetworkError, describeNetworkError, NodeApiClient } from './clients/index.js';
import { kindFromPathSegment } from './kinds.js';
import { findEndpoint } from './service.js';

/**
 * `ANY /proxy/{streamers|caches|slbs}/{id}/{path…}`: a raw, streamed passthrough to a node's own
 * API. The caller is authenticated before this runs; the node is looked up on every request.
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
  db: Db;
  timeoutMs: number;
}

export function parsePassthroughPath(rawUrl: string) {
  const match = PATH.exec(rawUrl);
  if (!match) return null;
  const [, kindSegment = '', id = '', path = '/', query = ''] = match;
  return { kind: kindFromPathSegment(kindSegment), id: decodeURIComponent(id), upstreamPath: path + query };
}

export function createPassthrough({ db, timeoutMs }: PassthroughOptions) {
  return async function passthrough(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = safeParse(req.url ?? '');
    const endpoint = target?.kind ? await findEndpoint(db, target.id, target.kind) : null;
    if (!target || !endpoint) {
      sendError(res, 404, 'NOT_FOUND', 'no such node');
      return;
    }
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    try {
      await new NodeApiClient(endpoint).proxyRequest(
        {
          method: req.method ?? 'GET',
          path: target.upstreamPath,
          headers: forwardedRequestHeaders(req),
          body: hasBody ? req : null,
          signal: abort.signal,
          timeoutMs,
        },
        ({ statusCode, headers }) => {
          res.writeHead(statusCode, responseHeaders(headers));
          return res;
        },
      );
    } catch (error) {
      if (abort.signal.aborted) return; // the caller went away; nothing to answer
      const failure = classifyNetworkError(error);
      const reason = describeNetworkError(error, timeoutMs);
      if (failure === 'timeout') sendError(res, 504, 'UPSTREAM_TIMEOUT', `node did not answer: ${reason}`);
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

function forwardedRequestHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const listedInConnection = new Set(
    (req.headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (!values || NOT_FORWARDED.has(name) || listedInConnection.has(name)) continue;
    headers[name] = values.length === 1 ? (values[0] as string) : values;
  }
  const client = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = prior ? `${prior}, ${client}` : client;
  headers['x-forwarded-proto'] = 'http';
  if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
  return headers;
}

function responseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}
