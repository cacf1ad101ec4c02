import { z } from 'zod';
import { ROLES } from './roles.js';

export const createTokenSchema = z.object({
  name: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9._@-]*$/,
      'may contain letters, digits, ".", "_", "@" and "-", starting with a letter or digit',
    ),
  role: z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` }),
  expiresAt: z
    .date({ error: 'must be a date' })
    .nullish()
    .refine((at) => !at || at.getTime() > Date.now(), 'must be in the future'),
});
