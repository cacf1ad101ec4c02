import { z } from 'zod';
import { badInput } from './errors.js';
import { parseInput } from './validate.js';

/**
 * Forward cursor pagination over a unique, ordered key (UUIDv7 ids sort by creation time).
 * A cursor is the opaque base64url of `<prefix>:<key>`; a cursor from another list, or garbage,
 * is BAD_USER_INPUT rather than a database error.
 */
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

export interface PageArgs {
  first?: number | null;
  after?: string | null;
}

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

const firstSchema = z
  .number()
  .int()
  .min(0, 'must be 0 or more')
  .max(MAX_PAGE_SIZE, `must be at most ${MAX_PAGE_SIZE}`)
  .nullish();

export function encodeCursor(prefix: string, key: string): string {
  return Buffer.from(`${prefix}:${key}`).toString('base64url');
}

export function decodeCursor(prefix: string, cursor: string, isValidKey: (key: string) => boolean): string {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  const key = decoded.startsWith(`${prefix}:`) ? decoded.slice(prefix.length + 1) : '';
  if (!isValidKey(key)) throw badInput('after: not a cursor of this list', 'after');
  return key;
}

/** Validates `first`/`after`; `take` asks for one extra row to learn whether a next page exists. */
export function pageQuery(prefix: string, args: PageArgs, isValidKey: (key: string) => boolean) {
  const first = parseInput(firstSchema, args.first, 'first') ?? DEFAULT_PAGE_SIZE;
  const afterKey = args.after == null ? undefined : decodeCursor(prefix, args.after, isValidKey);
  return { first, afterKey, take: first + 1 };
}

export function toPage<T>(
  prefix: string,
  rows: T[],
  query: { first: number; afterKey?: string },
  keyOf: (row: T) => string,
): Page<T> {
  const nodes = rows.slice(0, query.first);
  const edges = nodes.map((node) => ({ cursor: encodeCursor(prefix, keyOf(node)), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > query.first,
      hasPreviousPage: query.afterKey !== undefined,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}
