import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './graphql/builder.js';
import './modules/index.js'; // each module's index.ts registers its GraphQL types

/** Every module registers its types on import; this builds the served schema from them. */
export const schema = builder.toSchema();

/** What `schema.graphql` holds: the served schema, printed sorted so diffs stay small. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
