import SchemaBuilder from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import { GraphQLError } from 'graphql';
import { DateTimeResolver, JSONResolver, UUIDResolver } from 'graphql-scalars';
import type PrismaTypes from '../generated/pothos-prisma-types.js';
import { getDatamodel } from '../generated/pothos-prisma-types.js';
import type { Context } from './context.js';

interface BuilderOptions {
  Context: Context;
  // Fields are non-null unless they say `nullable: true`, as the contract mostly is.
  DefaultFieldNullability: false;
  PrismaTypes: PrismaTypes;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    UUID: { Input: string; Output: string };
  };
}

/** The one Pothos builder; each module's schema.ts registers its types on it. */
export const builder = new SchemaBuilder<BuilderOptions>({
  defaultFieldNullability: false,
  plugins: [PrismaPlugin],
  prisma: {
    client: (ctx) => ctx.db,
    dmmf: getDatamodel(),
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);
// A malformed UUID is the caller's mistake like any other bad input: BAD_USER_INPUT, whether it
// comes as a variable or a literal (graphql-js keeps the extensions of a scalar's GraphQLError).
builder.addScalarType('UUID', UUIDResolver, {
  parseValue: asBadUserInput(UUIDResolver.parseValue),
  parseLiteral: asBadUserInput(UUIDResolver.parseLiteral),
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

/** The builder's resolved type parameters, for helpers that take Pothos refs. */
export type BuilderTypes = PothosSchemaTypes.ExtendDefaultTypes<BuilderOptions>;

function asBadUserInput<A extends unknown[], R>(parse: (...args: A) => R): (...args: A) => R {
  return (...args) => {
    try {
      return parse(...args);
    } catch (error) {
      throw new GraphQLError(error instanceof Error ? error.message : String(error), {
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
  };
}
