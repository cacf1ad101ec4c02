import { isIP } from 'node:net';
import { z } from 'zod';

// RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export const hostSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .refine((host) => isIP(host) !== 0 || HOSTNAME.test(host), {
    message: 'must be a host name or IP address, without scheme, port, path or spaces',
  });

export const portSchema = z
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(1, 'must be between 1 and 65535')
  .max(65535, 'must be between 1 and 65535');

/** Names become route aliases (`{kind}-{name}`) later, so they keep to URL- and DNS-safe characters. */
export const nameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters')
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    'may contain letters, digits, ".", "_" and "-", starting with a letter or digit',
  );

export const createNodeSchema = z.object({ name: nameSchema, host: hostSchema, apiPort: portSchema });
export const createStreamerSchema = createNodeSchema.extend({ httpPort: portSchema });

/** Updates: every field optional, but an explicit null is as wrong as a bad value. */
export const updateNodeSchema = createNodeSchema.partial();
export const updateStreamerSchema = createStreamerSchema.partial();
