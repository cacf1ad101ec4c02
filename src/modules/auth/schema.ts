import { builder } from '../../graphql/builder.js';
import type { Role } from './roles.js';
import type { ApiTokenRow } from './service.js';

const RoleEnum = builder.enumType('Role', {
  description: 'What a token may do: VIEWER reads, OPERATOR also pings and runs sessions, ADMIN does everything.',
  values: {
    VIEWER: { value: 'viewer' as Role },
    OPERATOR: { value: 'operator' as Role },
    ADMIN: { value: 'admin' as Role },
  },
});

const ApiToken = builder.objectRef<ApiTokenRow>('ApiToken').implement({
  description: 'A bearer token, without its secret (shown once, by createApiToken; only its hash is stored).',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    role: t.field({ type: RoleEnum, resolve: (row) => row.role }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When it last authenticated anything; written every few seconds, not per request.',
    }),
  }),
});

const CreateApiTokenPayload = builder
  .objectRef<{ token: string; apiToken: ApiTokenRow }>('CreateApiTokenPayload')
  .implement({
    fields: (t) => ({
      token: t.exposeString('token', { description: 'The secret: shown here only, never again.' }),
      apiToken: t.field({ type: ApiToken, resolve: (p) => p.apiToken }),
    }),
  });

builder.queryField('apiTokens', (t) =>
  t.field({
    type: [ApiToken],
    authScopes: { admin: true },
    description: 'Every stored token, oldest first (ADMIN_TOKEN, from the environment, is not one).',
    resolve: (_root, _args, ctx) => ctx.auth.listTokens(),
  }),
);

builder.mutationFields((t) => ({
  createApiToken: t.field({
    type: CreateApiTokenPayload,
    authScopes: { admin: true },
    description: 'A new token with a role (and an expiry, when given); logged as `auth.token_created`.',
    args: {
      name: t.arg.string({ required: true }),
      role: t.arg({ type: RoleEnum, required: true }),
      expiresAt: t.arg({ type: 'DateTime' }),
    },
    resolve: (_root, args, ctx) => ctx.auth.createToken(args, ctx.actor),
  }),
  revokeApiToken: t.field({
    type: ApiToken,
    nullable: true,
    authScopes: { admin: true },
    description:
      'Deletes the token: refused from the next request (within 10 s on other instances); its open graphql-ws and ' +
      'relay connections are closed with 4403. Null when there is no such token. Logged as `auth.token_revoked`.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.auth.revokeToken(String(id), ctx.actor),
  }),
}));
