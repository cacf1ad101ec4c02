import { z } from 'zod';

const uuid = z.uuid();

/**
 * True for a well-formed UUID (any case). Ids are checked before they reach the database: a
 * malformed one is "no such thing" (NOT_FOUND or null), never a database error.
 */
export const isUuid = (value: string): boolean => uuid.safeParse(value).success;
