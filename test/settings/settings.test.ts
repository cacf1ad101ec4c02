import type { StreamGateClient, UpdateSettingsInput } from '@streamgate/client';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/graphql/context.js';
import { createLogger } from '../../src/lib/logger.js';
import { EventBus } from '../../src/modules/events/bus.js';
import { type Settings, SettingsService } from '../../src/modules/settings/service.js';
import { servicesOf } from '../events/helpers.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { dispose } from '../helpers/leftovers.js';
import { rejection, sdkClient } from '../helpers/sdk.js';

const DEFAULTS = {
  staleThresholdDays: 7,
  healthCheckIntervalSeconds: 30,
  healthFailureThreshold: 3,
  healthSuccessThreshold: 2,
  sslCertificateId: null,
};

let app: TestApp;
let sg: StreamGateClient;
let services: Context;
beforeAll(async () => {
  app = await startTestApp();
  sg = sdkClient(app);
  services = await servicesOf(app);
});
beforeEach(async () => {
  // Back to the defaults through the service, so its cache follows too.
  await services.settings.update(DEFAULTS, { id: 'test', name: 'reset' });
  await app.db.prisma.eventLog.deleteMany();
});

const update = async (input: UpdateSettingsInput) => (await sg.updateSettings({ input })).updateSettings;
const current = async () => (await sg.settings()).settings;
/** The system's entries of the event log, as a client reads them (without ids, cursors and times). */
const audit = async () =>
  (await sg.events({ source: 'system' })).events.edges.map(({ node: { type, severity, message, details, actor } }) => ({
    type,
    severity,
    message,
    details,
    actor,
  }));

describe('settings', () => {
  it('reads the defaults the migration created', async () => {
    expect(await current()).toEqual(DEFAULTS);
  });

  it('changes only the given fields, and clears sslCertificateId with null', async () => {
    const first = await update({ staleThresholdDays: 14, healthFailureThreshold: 5, sslCertificateId: 42 });
    expect(first).toEqual({
      ...DEFAULTS,
      staleThresholdDays: 14,
      healthFailureThreshold: 5,
      sslCertificateId: 42,
    });
    await update({ sslCertificateId: null });
    expect(await current()).toEqual({
      ...DEFAULTS,
      staleThresholdDays: 14,
      healthFailureThreshold: 5,
    });
    expect(await app.db.prisma.settings.findUniqueOrThrow({ where: { id: 1 } })).toMatchObject({
      staleThresholdDays: 14,
      sslCertificateId: null,
    });
  });

  it('logs each change as settings.updated with who made it and what changed', async () => {
    await update({ healthCheckIntervalSeconds: 10, staleThresholdDays: 7 }); // 7 is no change
    expect(await audit()).toEqual([
      {
        type: 'settings.updated',
        severity: 'INFO',
        message: 'settings changed: healthCheckIntervalSeconds 30 → 10',
        details: { changes: { healthCheckIntervalSeconds: 10 }, previous: { healthCheckIntervalSeconds: 30 } },
        actor: { id: 'env', name: 'ADMIN_TOKEN' },
      },
    ]);
  });

  it('logs nothing and tells no listener when nothing changes', async () => {
    const heard: Settings[] = [];
    const stop = services.settings.onChange((s) => heard.push(s));
    await update({ staleThresholdDays: 7, sslCertificateId: null });
    await update({});
    stop();
    expect(heard).toEqual([]);
    expect(await audit()).toEqual([]);
  });

  it('tells listeners at once (before the mutation answers), until they unsubscribe', async () => {
    const heard: number[] = [];
    const stop = services.settings.onChange((s) => heard.push(s.healthCheckIntervalSeconds));
    await update({ healthCheckIntervalSeconds: 5 });
    expect(heard).toEqual([5]);
    expect((await services.settings.get()).healthCheckIntervalSeconds).toBe(5);
    stop();
    await update({ healthCheckIntervalSeconds: 6 });
    expect(heard).toEqual([5]);
  });

  it('keeps telling the others when one listener throws', async () => {
    const heard: number[] = [];
    const stopBad = services.settings.onChange(() => {
      throw new Error('listener bug');
    });
    const stop = services.settings.onChange((s) => heard.push(s.staleThresholdDays));
    expect((await update({ staleThresholdDays: 3 })).staleThresholdDays).toBe(3);
    stopBad();
    stop();
    expect(heard).toEqual([3]);
  });

  it.each<[UpdateSettingsInput, string]>([
    [{ staleThresholdDays: 0 }, 'input.staleThresholdDays'],
    [{ staleThresholdDays: 3651 }, 'input.staleThresholdDays'],
    [{ healthCheckIntervalSeconds: 0 }, 'input.healthCheckIntervalSeconds'],
    [{ healthCheckIntervalSeconds: 86_401 }, 'input.healthCheckIntervalSeconds'],
    [{ healthFailureThreshold: -1 }, 'input.healthFailureThreshold'],
    [{ healthSuccessThreshold: 101 }, 'input.healthSuccessThreshold'],
    [{ sslCertificateId: 0 }, 'input.sslCertificateId'],
    [{ staleThresholdDays: null }, 'input.staleThresholdDays'],
    [{ healthCheckIntervalSeconds: 10, healthFailureThreshold: 0 }, 'input.healthFailureThreshold'],
  ])('rejects %j with BAD_USER_INPUT naming %s, changing nothing', async (input, field) => {
    const error = await rejection(update(input));
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await current()).toEqual(DEFAULTS);
    expect(await audit()).toEqual([]);
  });

  it('accepts the bounds themselves', async () => {
    const bounds = {
      staleThresholdDays: 3650,
      healthCheckIntervalSeconds: 1,
      healthFailureThreshold: 100,
      healthSuccessThreshold: 1,
      sslCertificateId: 1,
    };
    expect(await update(bounds)).toEqual(bounds);
  });
});

describe('another instance on the same database', () => {
  it('sees a change once its cache expires, and tells its own listeners', async () => {
    const bus = dispose(
      new EventBus({ db: app.db.prisma, log: createLogger('silent'), minStoredSeverity: 'WARN' }),
      (b) => b.close(),
    );
    const other = new SettingsService({ db: app.db.prisma, events: bus, cacheMs: 50 });
    expect((await other.get()).healthSuccessThreshold).toBe(2);
    const heard: number[] = [];
    other.onChange((s) => heard.push(s.healthSuccessThreshold));
    await update({ healthSuccessThreshold: 4 });
    expect((await other.get()).healthSuccessThreshold).toBe(2); // still cached
    await new Promise((r) => setTimeout(r, 60));
    expect((await other.get()).healthSuccessThreshold).toBe(4);
    expect(heard).toEqual([4]);
  });
});
