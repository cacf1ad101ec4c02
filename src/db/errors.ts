import { Prisma } from '../generated/prisma/client.js';

/**
 * True when `error` is a unique-constraint violation (P2002) on `model`'s unique index over
 * `fields` (one field, or the fields of a compound `@@unique`, in order). The driver adapters say
 * which constraint differently: PGlite's names the fields, node-postgres's the index
 * (`Model_a_b_key`, Prisma's name for a unique index).
 */
export function isUniqueViolation(error: unknown, model: string, fields: string | readonly string[]): boolean {
  const wanted = typeof fields === 'string' ? [fields] : fields;
  if (!(error instanceof Prisma.PrismaClientKnownRequestError) || error.code !== 'P2002') return false;
  const meta = error.meta as
    | { target?: unknown; driverAdapterError?: { cause?: { constraint?: { fields?: unknown; index?: unknown } } } }
    | undefined;
  const constraint = meta?.driverAdapterError?.cause?.constraint;
  const named = new Set(
    [meta?.target, constraint?.fields]
      .flat()
      .filter((f): f is string => typeof f === 'string')
      .map((f) => f.replaceAll('"', '')),
  );
  return wanted.every((f) => named.has(f)) || constraint?.index === `${model}_${wanted.join('_')}_key`;
}

/** True when `error` says the row to update or delete does not exist (P2025). */
export function isRecordNotFound(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2025';
}
