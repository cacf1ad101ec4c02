import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Db } from '../../db/client.js';
import { sendError } from '../../http/respond.js';
import { classifyNetworkError, describeNetworkError, NodeApiClient, type NodeEndpoint } from './clients/index.js';
import { kindFromPathSegment, type NodeKind } from './kinds.js';
import { findEndpoint } from './service.js';

/**
 * `ANY /proxy/{streamers|caches|slbs}/{id}/{path…}`: a raw, streamed passthrough to a node's own
 * API. The caller is authenticated before this runs; the node is looked up for every request
 * (concurrent requests for one node share a lookup that started after they arrived: EndpointLookups).
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
  return { kind: kindFromPathSegment(kindSegment), id: decodeURIComponent(id), upstreamPath: decodeURIComponent(path) + query };
}

export function createPassthrough({ db, timeoutMs }: PassthroughOptions) {
  const endpoints = new EndpointLookups(db);
  return async function passthrough(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = safeParse(req.url ?? '');
    const endpoint = target?.kind ? await endpoints.find(target.id, target.kind) : null;
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

/**
 * Registry lookups for the passthrough, coalesced per node. Every request still reads the registry
 * after it arrived, so a change committed before a request arrives applies to it; but requests
 * arriving while a lookup for the same node is in flight do not each queue a query of their own:
 * they share the next one, which starts as soon as the current one settles. They cannot share the
 * one in flight, which may have read the registry before a change they must see.
 *
 * Why: a lookup is a database round trip (~2 ms of CPU on the embedded database, whose single
 * backend serialises queries), so one query per request capped the passthrough at a few hundred
 * requests per second and queued requests behind each other's lookups. Coalesced, a busy node
 * costs about one query per query time, however many requests are in flight for it.
 */
class EndpointLookups {
  private readonly running = new Map<string, Promise<NodeEndpoint | null>>();
  private readonly queued = new Map<string, Promise<NodeEndpoint | null>>();

  constructor(private readonly db: Db) {}

  find(id: string, kind: NodeKind): Promise<NodeEndpoint | null> {
    const key = `${kind}/${id}`;
    const queued = this.queued.get(key);
    if (queued) return queued; // starts after the running one settles, so after we arrived
    const running = this.running.get(key);
    if (!running) return this.start(key, id, kind);
    const next = running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.queued.delete(key); // from here on, newcomers must wait for the lookup after this one
        return this.start(key, id, kind);
      });
    this.queued.set(key, next);
    return next;
  }

  private start(key: string, id: string, kind: NodeKind): Promise<NodeEndpoint | null> {
    const lookup: Promise<NodeEndpoint | null> = findEndpoint(this.db, id, kind).finally(() => {
      if (this.running.get(key) === lookup) this.running.delete(key);
    });
    this.running.set(key, lookup);
    return lookup;
  }
}

function safeParse(rawUrl: string) {
  try {
    return parsePassthroughPath(rawUrl);
  } catch {
    return null; // malformed percent-encoding in the id
  }
}

function forwardedRequestHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const listedInConnection = connectionTokens(req.headers.connection);
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

/**
 * The node's headers minus hop-by-hop ones, including those its `Connection` header names: they
 * describe the node→StreamGate connection, not ours to the caller (RFC 9110 §7.6.1).
 */
function responseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const listedInConnection = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !listedInConnection.has(name)) out[name] = value;
  }
  return out;
}

/** Header names listed in a `Connection` header (possibly repeated), lower-cased. */
function connectionTokens(connection: string | string[] | undefined): Set<string> {
  if (!connection) return new Set();
  const values = Array.isArray(connection) ? connection : [connection];
  return new Set(
    values
      .flatMap((v) => v.split(','))
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
}
