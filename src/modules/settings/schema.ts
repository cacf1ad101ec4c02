import { builder } from '../../graphql/builder.js';
import type { Settings } from './service.js';

const SettingsRef = builder.objectRef<Settings>('Settings').implement({
  description: 'Operator-tunable settings; a change takes effect without a restart.',
  fields: (t) => ({
    staleThresholdDays: t.exposeInt('staleThresholdDays', {
      description: 'Event log entries older than this many days are purged (hourly, in batches).',
    }),
    healthCheckIntervalSeconds: t.exposeInt('healthCheckIntervalSeconds', {
      description: 'How often every monitored subject is checked (±10% jitter).',
    }),
    healthFailureThreshold: t.exposeInt('healthFailureThreshold', {
      description: 'Consecutive failed checks before a subject becomes UNHEALTHY.',
    }),
    healthSuccessThreshold: t.exposeInt('healthSuccessThreshold', {
      description: 'Consecutive successful checks before a subject becomes HEALTHY again.',
    }),
    sslCertificateId: t.exposeInt('sslCertificateId', { nullable: true }),
  }),
});

const UpdateSettingsInput = builder.inputType('UpdateSettingsInput', {
  description: 'Fields left out keep their value; `sslCertificateId: null` clears it.',
  fields: (t) => ({
    staleThresholdDays: t.int({ description: '1 to 3650' }),
    healthCheckIntervalSeconds: t.int({ description: '1 to 86400' }),
    healthFailureThreshold: t.int({ description: '1 to 100' }),
    healthSuccessThreshold: t.int({ description: '1 to 100' }),
    sslCertificateId: t.int({ description: '1 or more, or null to clear' }),
  }),
});

builder.queryField('settings', (t) =>
  t.field({ type: SettingsRef, authScopes: { viewer: true }, resolve: (_root, _args, ctx) => ctx.settings.get() }),
);

builder.mutationField('updateSettings', (t) =>
  t.field({
    type: SettingsRef,
    description:
      'Validates and applies a change (BAD_USER_INPUT naming the field otherwise); logged as `settings.updated`.',
    args: { input: t.arg({ type: UpdateSettingsInput, required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { input }, ctx) => ctx.settings.update(input, ctx.actor),
  }),
);
