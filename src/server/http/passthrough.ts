import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import {
  classifyNetworkError,
  describeNetworkError,
  kindFromPathSegment,
  type NodeDirectory,
  type NodeEndpoint,
  nodeOrigin,
} from '../../modules/nodes/index.js';
import { forward, forwardedRequestHeaders, hasBody, NODE_API } from './forward.js';
import { sendError } from './respond.js';

/**
 * `ANY /proxy/{streamers|caches|slbs}/{id}/{path…}`: a raw, streamed passthrough to a node's own
 * API. The caller is authenticated before this runs; the node's address comes from the
 * NodeDirectory, which every change to a node updates before the change is acknowledged.
 */

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
    try {
      await forward(
        agent,
        {
          origin: nodeOrigin(endpoint),
          method: req.method ?? 'GET',
          path: target.upstreamPath,
          headers: forwardedRequestHeaders(req, NODE_API.request),
          body: hasBody(req) ? req : null,
          timeoutMs,
        },
        res,
        NODE_API.responseHeaders,
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
