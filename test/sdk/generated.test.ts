import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { generate } from '@graphql-codegen/cli';
import { type GraphQLObjectType, Kind, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import sdkConfig from '../../codegen.sdk.js';
import { PROJECT_ROOT } from '../../src/lib/paths.js';
import { schema } from '../../src/schema.js';

const OPERATIONS = resolve(PROJECT_ROOT, 'sdk/operations');

/** Root fields (`Query.streamers`, …) the SDK's operations select. */
async function coveredRootFields(): Promise<Set<string>> {
  const covered = new Set<string>();
  const roots = { query: 'Query', mutation: 'Mutation', subscription: 'Subscription' } as const;
  for (const file of await readdir(OPERATIONS)) {
    const document = parse(await readFile(join(OPERATIONS, file), 'utf8'));
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
      for (const selection of definition.selectionSet.selections) {
        if (selection.kind === Kind.FIELD) covered.add(`${roots[definition.operation]}.${selection.name.value}`);
      }
    }
  }
  return covered;
}

function servedRootFields(): string[] {
  const types = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()];
  return types.flatMap((type: GraphQLObjectType | null | undefined) =>
    type ? Object.keys(type.getFields()).map((field) => `${type.name}.${field}`) : [],
  );
}

describe('the SDK (@streamgate/client)', () => {
  it('has an operation for every root field of the served schema', async () => {
    const covered = await coveredRootFields();
    const missing = servedRootFields().filter((field) => !covered.has(field));
    expect(missing, 'add an operation to sdk/operations for each').toEqual([]);
  });

  it('the coverage check can fail: a root field without an operation is reported', async () => {
    const covered = await coveredRootFields();
    covered.delete('Query.streamers');
    expect(servedRootFields().filter((field) => !covered.has(field))).toEqual(['Query.streamers']);
  });

  it('has its generated code current (run `npm run codegen:sdk` after changing the schema or an operation)', async () => {
    const [output] = await generate({ ...sdkConfig, cwd: PROJECT_ROOT, silent: true }, false);
    const committed = await readFile(resolve(PROJECT_ROOT, 'sdk/src/generated/sdk.ts'), 'utf8');
    expect(output?.filename).toBe('sdk/src/generated/sdk.ts');
    expect(committed).toBe(output?.content);
  });
});
