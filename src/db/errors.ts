import { Prisma } from '../generated/prisma/client.js';

/**
 * True when `error` is a unique-constraint violation (P2002) on `model.field`. The driver adapters
 * say which constraint differently: PGlite's names the fields, node-postgres's the index
 * (`Model_field_key`, Prisma's name for a single-field unique index).
 */
export function isUniqueViolation(error: unknown, model: string, field: string): boolean {
  if (!(error instanceof Prisma.PrismaClientKnownRequestError) || error.code !== 'P2002') return false;
  const meta = error.meta as
    | { target?: unknown; driverAdapterError?: { cause?: { constraint?: { fields?: unknown; index?: unknown } } } }
    | undefined;
  const constraint = meta?.driverAdapterError?.cause?.constraint;
  const fields = [meta?.target, constraint?.fields].flat().filter((f): f is string => typeof f === 'string');
  return fields.some((f) => f.replaceAll('"', '') === field) || constraint?.index === `${model}_${field}_key`;
}
