import SchemaBuilder from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { GraphQLError } from 'graphql';
import { DateTimeResolver, JSONResolver, UUIDResolver } from 'graphql-scalars';
import type PrismaTypes from '../generated/pothos-prisma-types.js';
import { getDatamodel } from '../generated/pothos-prisma-types.js';
import { appError } from '../lib/errors.js';
// The roles only (not the auth module's index, which registers GraphQL types on this builder).
import { hasRole } from '../modules/auth/roles.js';
import type { Context } from './context.js';

interface BuilderOptions {
  Context: Context;
  /** What a field may require: the roles (README "Roles"), each including the ones below it. */
  AuthScopes: { viewer: boolean; operator: boolean; admin: boolean };
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
  plugins: [ScopeAuthPlugin, PrismaPlugin],
  // Every root field declares the one role it needs (`authScopes: { operator: true }`) where it is
  // defined; test/auth/roles.test.ts checks that and the README's matrix. Subscriptions are
  // checked once, when they start.
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: ({ principal }) => ({
      viewer: hasRole(principal.role, 'viewer'),
      operator: hasRole(principal.role, 'operator'),
      admin: hasRole(principal.role, 'admin'),
    }),
    unauthorizedError: (_parent, { principal }, info, result) =>
      appError('FORBIDDEN', `${info.parentType.name}.${info.fieldName}: not allowed for role ${principal.role}`, {
        reason: result.message,
      }),
  },
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
