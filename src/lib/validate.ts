import type { z } from 'zod';
import { appError } from './errors.js';

/**
 * Parses input with a zod schema before any I/O. Failure is BAD_USER_INPUT naming the first bad
 * field in `extensions.field` and every problem in `extensions.problems`.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix?: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => ({
    field: [prefix, ...issue.path.map(String)].filter(Boolean).join('.'),
    message: issue.message,
  }));
  const message = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  throw appError('BAD_USER_INPUT', message, { field: problems[0]?.field, problems });
}
