import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { buildSchema, findBreakingChanges } from 'graphql';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/lib/paths.js';
import { printSortedSchema, schema } from '../src/schema.js';

const CONTRACT = resolve(PROJECT_ROOT, '../shared/contract.graphql');

describe('served schema', () => {
  it('is a superset of ../shared/contract.graphql (findBreakingChanges is empty)', async () => {
    const contract = buildSchema(await readFile(CONTRACT, 'utf8'));
    const breaking = findBreakingChanges(contract, schema);
    expect(breaking).toEqual([]);
  });

  it('the check can fail: a contract asking for a field the schema lacks is a breaking change', async () => {
    const contract = buildSchema(`${await readFile(CONTRACT, 'utf8')}\nextend type Route { notServed: String }`);
    expect(findBreakingChanges(contract, schema)).toEqual([
      expect.objectContaining({ type: 'FIELD_REMOVED', description: 'Route.notServed was removed.' }),
    ]);
  });

  it('matches the committed schema.graphql (run `npm run print-schema` after changing it)', async () => {
    const committed = await readFile(resolve(PROJECT_ROOT, 'schema.graphql'), 'utf8');
    expect(committed).toBe(printSortedSchema());
  });
});
