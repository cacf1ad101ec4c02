import { z } from 'zod';
import type { NpmErrorBody, NpmProxyHost, NpmProxyHostLocation, NpmToken, NpmTokenChallenge } from './types.js';

/**
 * What NPM's answers must look like before we use them. Lenient on purpose: extra keys are kept
 * (NPM adds fields between versions, and expands relations on single-host answers), but every
 * field we type is checked, so a wrong URL or a very different NPM fails loudly, not later.
 */

const location = z.looseObject({
  id: z.number().int().nullable().optional(),
  path: z.string(),
  forward_scheme: z.enum(['http', 'https']),
  forward_host: z.string(),
  forward_port: z.number().int(),
  forward_path: z.string().optional(),
  advanced_config: z.string().optional(),
}) satisfies z.ZodType<NpmProxyHostLocation>;

export const proxyHostSchema = z.looseObject({
  id: z.number().int().positive(),
  created_on: z.string(),
  modified_on: z.string(),
  owner_user_id: z.number().int(),
  domain_names: z.array(z.string()),
  forward_scheme: z.enum(['http', 'https']),
  forward_host: z.string(),
  forward_port: z.number().int(),
  access_list_id: z.number().int(),
  certificate_id: z.number().int(),
  ssl_forced: z.boolean(),
  caching_enabled: z.boolean(),
  block_exploits: z.boolean(),
  advanced_config: z.string(),
  meta: z.record(z.string(), z.unknown()),
  allow_websocket_upgrade: z.boolean(),
  http2_support: z.boolean(),
  enabled: z.boolean(),
  locations: z.array(location),
  hsts_enabled: z.boolean(),
  hsts_subdomains: z.boolean(),
}) satisfies z.ZodType<NpmProxyHost>;

export const proxyHostListSchema = z.array(proxyHostSchema);

export const tokenSchema = z.looseObject({
  token: z.string().min(1),
  expires: z.union([z.string().min(1), z.number()]),
}) satisfies z.ZodType<NpmToken>;

export const tokenChallengeSchema = z.looseObject({
  requires_2fa: z.literal(true),
  challenge_token: z.string(),
}) satisfies z.ZodType<NpmTokenChallenge>;

export const errorBodySchema = z.looseObject({
  error: z.looseObject({ code: z.number().int(), message: z.string() }),
}) satisfies z.ZodType<NpmErrorBody>;

/** `DELETE` answers a bare `true`. */
export const deletedSchema = z.boolean();

/** The first few problems, as `path: message`, for an error message a person can act on. */
export function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 3).map((issue) => {
    const path = issue.path.length ? issue.path.map(String).join('.') : '(body)';
    return `${path}: ${issue.message}`;
  });
  const more = error.issues.length - shown.length;
  return shown.join('; ') + (more > 0 ? ` (and ${more} more)` : '');
}
