import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './graphql/builder.js';
import './modules/events/schema.js';
import './modules/health/schema.js';
import './modules/nodes/schema.js';
import './modules/proxies/schema.js';
import './modules/routes/schema.js';
import './modules/sessions/schema.js';
import './modules/settings/schema.js';

/** Every module registers its types on import; this builds the served schema from them. */
export const schema = builder.toSchema();

/** What `schema.graphql` holds: the served schema, printed sorted so diffs stay small. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
