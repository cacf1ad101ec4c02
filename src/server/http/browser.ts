import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Env } from '../../env.js';
import { sendJson } from './respond.js';

/** GraphiQL is for people at a browser: on by default, off in production unless GRAPHIQL=true. */
export function graphiqlEnabled(env: Pick<Env, 'GRAPHIQL' | 'NODE_ENV'>): boolean {
  return env.GRAPHIQL === undefined ? env.NODE_ENV !== 'production' : env.GRAPHIQL === 'true';
}

/** No Origin (not a browser) or one of CORS_ORIGINS, matched exactly. */
export function originAllowed(origin: string | undefined, allowed: readonly string[] | undefined): boolean {
  return origin === undefined || (allowed?.includes(origin) ?? false);
}

/**
 * CSRF: a browser form can POST `application/x-www-form-urlencoded`, `multipart/form-data` or
 * `text/plain` to any site without a preflight, with the victim's ambient credentials. GraphQL
 * here takes JSON bodies only (and GET for queries, which Yoga never lets mutate), so a form can
 * never run an operation. Answers 415 itself and returns false for anything else.
 */
export function requireJsonBody(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'POST') return true;
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (type === 'application/json' || type === 'application/graphql-response+json') return true;
  sendJson(res, 415, {
    errors: [
      {
        message: 'GraphQL requests take a JSON body (content-type: application/json), or GET for queries',
        extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' },
      },
    ],
  });
  return false;
}
