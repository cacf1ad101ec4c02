import { buildSchema, type GraphQLResolveInfo, graphql } from 'graphql';
import { describe, expect, it } from 'vitest';
import { selectedFieldNames, selectFor } from '../../src/graphql/selection.js';

/** The resolve info of `things` for a document, read by really executing it. */
async function infoOf(document: string): Promise<GraphQLResolveInfo> {
  const schema = buildSchema(`
    type Thing { id: ID! name: String health: String extra: String }
    type Edge { cursor: String! node: Thing! }
    type Connection { edges: [Edge!]! }
    type Query { things: Connection! thing: Thing }
  `);
  let captured: GraphQLResolveInfo | undefined;
  const capture = (_args: unknown, _ctx: unknown, info: GraphQLResolveInfo) => {
    captured = info;
    return null;
  };
  const result = await graphql({ schema, source: document, rootValue: { things: capture, thing: capture } });
  if (!captured) throw new Error(JSON.stringify(result.errors));
  return captured;
}

const COLUMNS = { id: ['id'], name: ['name'], health: ['status', 'checkedAt'] } as const;

describe('selectedFieldNames', () => {
  it('finds the fields under a path through aliases, fragments and inline fragments', async () => {
    const info = await infoOf(`
      { things { edges { cursor node { id renamed: name ...F ... on Thing { health } } } } }
      fragment F on Thing { id __typename }
    `);
    expect([...selectedFieldNames(info, ['edges', 'node'])].sort()).toEqual(['__typename', 'health', 'id', 'name']);
    expect([...selectedFieldNames(info, ['edges'])].sort()).toEqual(['cursor', 'node']);
  });

  it('reads the field itself with an empty path', async () => {
    const info = await infoOf('{ thing { name } }');
    expect([...selectedFieldNames(info, [])]).toEqual(['name']);
  });
});

describe('selectFor', () => {
  it('selects the columns of the asked-for fields and the ones always needed', () => {
    expect(selectFor(new Set(['name', 'health', '__typename']), COLUMNS, ['id'])).toEqual({
      id: true,
      name: true,
      status: true,
      checkedAt: true,
    });
  });

  it('reads the whole row (undefined) when a field is not listed', () => {
    expect(selectFor(new Set(['name', 'extra']), COLUMNS, ['id'])).toBeUndefined();
  });
});
