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

/** Prisma's codes for a database it cannot reach, lost, or timed out on. */
const UNREACHABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
/** Driver adapter error kinds that mean the same. */
const UNREACHABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/** node-postgres's own errors, met before Prisma wraps them (a transaction's BEGIN, say). */
const UNREACHABLE_MESSAGE =
  /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|PGlite is closed)/i;
/** SQLSTATE class 08 (connection exception) and the server shutting down or starting. */
const UNREACHABLE_SQLSTATE = /^(08|57P0[1-3])/;

/**
 * True when `error` (or what caused it) says the database cannot be reached right now, rather
 * than that the query was wrong: the API answers UNAVAILABLE, and the caller may try again.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof Prisma.PrismaClientInitializationError) return true;
    if (e instanceof Prisma.PrismaClientKnownRequestError) {
      if (UNREACHABLE_CODES.has(e.code)) return true;
      const kind = (e.meta as { driverAdapterError?: { cause?: { kind?: unknown } } } | undefined)?.driverAdapterError
        ?.cause?.kind;
      return typeof kind === 'string' && UNREACHABLE_KINDS.has(kind);
    }
    // An error with an API code (UPSTREAM_UNAVAILABLE for a node, say) already says what it is.
    if ((e as { extensions?: { code?: unknown } }).extensions?.code !== undefined) return false;
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && UNREACHABLE_SQLSTATE.test(code)) return true;
    if (typeof message === 'string' && UNREACHABLE_MESSAGE.test(message)) return true;
  }
  return false;
}
