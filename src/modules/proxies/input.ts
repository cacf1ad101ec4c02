import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * A proxy's domain: a DNS host name (RFC 1123 labels, at most 253 characters), stored lower-case
 * without a trailing dot, so `App.Example.com.` and `app.example.com` are the same domain. IP
 * addresses are refused: a proxy is found by name (NPM's server_name, the route registry's alias).
 */
export const domainSchema = z
  .string()
  .trim()
  .transform((value) => value.toLowerCase().replace(/\.$/, ''))
  .pipe(
    z
      .string()
      .min(1, 'must not be empty')
      .max(253, 'must be at most 253 characters')
      .refine((value) => isIP(value) === 0, 'must be a domain name, not an IP address')
      .pipe(z.hostname('must be a valid host name (letters, digits and hyphens in dot-separated labels)')),
  );

/** Not checked here: what is wrong with a destination (its length too) is the SYNTAX step's to say. */
const destinationSchema = z.string();

export const createProxySchema = z.object({ domain: domainSchema, destination: destinationSchema });

export const updateProxySchema = z
  .object({
    domain: domainSchema.nullish().transform((v) => v ?? undefined),
    destination: destinationSchema.nullish().transform((v) => v ?? undefined),
  })
  .refine((input) => input.domain !== undefined || input.destination !== undefined, {
    message: 'give a domain, a destination or both',
  });
