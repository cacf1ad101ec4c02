import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from './respond.js';

/**
 * The largest GraphQL request body taken: a document within the token limit (2,000 tokens) and
 * its variables fit many times over. Yoga's own default, 25 MB, would be buffered whole too.
 */
export const MAX_GRAPHQL_BODY_BYTES = 1024 * 1024;

/**
 * Reads a GraphQL POST body here, in Node, rather than through the fetch API's streams inside Yoga:
 * a request whose body is already parsed goes through @whatwg-node without a stream pipeline (an
 * AbortController, a DOMException and a TransformStream per request: about a tenth of a small
 * query's CPU). Resolves to what Yoga should be given as `req.body`: the parsed JSON when it is a
 * non-empty object or array, else the raw text (Yoga then answers a malformed body as it always
 * does). Resolves to undefined when the request was already answered: too large (413), or cut
 * off (bodyDeadline's 408, or the client gone).
 */
export function readGraphQLBody(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const tooLarge = () => {
    res.setHeader('connection', 'close');
    sendError(res, 413, 'PAYLOAD_TOO_LARGE', `a GraphQL request body may be ${MAX_GRAPHQL_BODY_BYTES} bytes at most`);
    req.socket.destroySoon();
  };
  if (Number(req.headers['content-length']) > MAX_GRAPHQL_BODY_BYTES) {
    tooLarge();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_GRAPHQL_BODY_BYTES) return void chunks.push(chunk);
      done();
      tooLarge();
      resolve(undefined);
    };
    const onEnd = () => {
      done();
      resolve(forYoga(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    };
    const onClose = () => {
      done();
      resolve(undefined);
    };
    const done = () => {
      req.off('data', onData).off('end', onEnd).off('close', onClose);
    };
    req.on('data', onData).once('end', onEnd).once('close', onClose);
  });
}

function forYoga(body: Buffer): unknown {
  const text = body.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object' && Object.keys(parsed).length > 0) return parsed;
  } catch {
    // Yoga parses it again and answers with its usual error.
  }
  return text;
}
