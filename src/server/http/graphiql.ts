import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';

/**
 * The GraphiQL page, served by us instead of Yoga: its JS and CSS are inlined (it must work
 * without internet), which makes it ~9 MB. It is rendered and compressed once, on the first view,
 * and sent compressed with an ETag and a day of caching, so a browser fetches it once and anyone
 * else gets ~1-2 MB, not 9. Whether it is served at all is GRAPHIQL's call (see app.ts).
 */
export interface GraphiQLPage {
  /** True when the request is a browser asking for the page (GET, Accept: text/html). */
  wants(req: IncomingMessage): boolean;
  send(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

interface Rendered {
  etag: string;
  identity: Buffer;
  gzip: Buffer;
  br: Buffer;
}

export function createGraphiQLPage(): GraphiQLPage {
  let rendered: Promise<Rendered> | undefined;
  const render = async (): Promise<Rendered> => {
    const { renderGraphiQL } = await import('@graphql-yoga/render-graphiql');
    const html = renderGraphiQL({
      endpoint: '/graphql',
      title: 'StreamGate',
      headers: JSON.stringify({ Authorization: 'Bearer <your token>' }, null, 2),
      subscriptionsProtocol: 'WS',
    });
    const identity = Buffer.from(html);
    const [gz, br] = await Promise.all([
      promisify(gzip)(identity, { level: 9 }),
      // Quality 9, not 11: 11 takes seconds on 9 MB for a few percent less.
      promisify(brotliCompress)(identity, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }),
    ]);
    const etag = `"${createHash('sha256').update(identity).digest('base64url').slice(0, 27)}"`;
    return { etag, identity, gzip: gz, br };
  };
  return {
    wants: (req) => req.method === 'GET' && (req.headers.accept ?? '').includes('text/html'),
    async send(req, res) {
      rendered ??= render();
      const page = await rendered;
      const headers: Record<string, string> = {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'public, max-age=86400',
        etag: page.etag,
        vary: 'accept-encoding',
        'x-content-type-options': 'nosniff',
      };
      if (req.headers['if-none-match'] === page.etag) {
        res.writeHead(304, headers).end();
        return;
      }
      const accepted = req.headers['accept-encoding'] ?? '';
      const [encoding, body] = /\bbr\b/.test(accepted)
        ? ['br', page.br]
        : /\bgzip\b/.test(accepted)
          ? ['gzip', page.gzip]
          : [null, page.identity];
      if (encoding) headers['content-encoding'] = encoding;
      headers['content-length'] = String(body.length);
      res.writeHead(200, headers).end(body);
    },
  };
}
