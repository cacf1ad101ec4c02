import { z } from 'zod';

const bounded = (min: number, max: number, unit: string) =>
  z
    .number({
      error: (issue) =>
        issue.input === null ? 'must not be null (leave it out to keep the current value)' : 'must be a whole number',
    })
    .int('must be a whole number')
    .min(min, `must be between ${min} and ${max} ${unit}`)
    .max(max, `must be between ${min} and ${max} ${unit}`);

/**
 * A settings change: every field optional; null only clears `sslCertificateId` (the others have
 * no "unset"). Bounds keep a typo from, say, checking health once a year or never purging.
 */
export const updateSettingsSchema = z.strictObject({
  staleThresholdDays: bounded(1, 3650, 'days').optional(),
  healthCheckIntervalSeconds: bounded(1, 86_400, 'seconds').optional(),
  healthFailureThreshold: bounded(1, 100, 'consecutive failures').optional(),
  healthSuccessThreshold: bounded(1, 100, 'consecutive successes').optional(),
  sslCertificateId: z
    .number({ error: 'must be a whole number, or null to clear it' })
    .int('must be a whole number')
    .min(1, 'must be 1 or more, or null to clear it')
    .max(2_147_483_647, 'must fit a 32-bit integer')
    .nullable()
    .optional(),
});

export type SettingsChange = z.output<typeof updateSettingsSchema>;
