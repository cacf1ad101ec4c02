import {
  type CreateProxyMutation,
  type GraphQLErrorShape,
  StreamGateError,
  type UpdateProxyInput,
} from '@streamgate/client';
import { expect } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { eventually } from '../helpers/eventually.js';
import { type FakeNpm, startFakeNpm } from '../helpers/fake-npm.js';
import { sdkClient } from '../helpers/sdk.js';
import { startUpstream, type Upstream } from './helpers.js';

/**
 * A test app with Nginx Proxy Manager sync on, against a fake NPM that follows its published API
 * schema (test/helpers/fake-npm.ts), and what the sync tests do with it.
 */

export type ProxyShape = NonNullable<CreateProxyMutation['createProxy']['proxy']>;

export interface NpmHarness {
  npm: FakeNpm;
  t: TestApp;
  upstream: Upstream;
}

/** NPM calls time out after 1 s here, so a hung NPM fails a test quickly. */
export async function startNpmHarness(): Promise<NpmHarness> {
  const npm = await startFakeNpm();
  const upstream = await startUpstream();
  const t = await startTestApp({
    env: { NPM_URL: npm.url, NPM_EMAIL: npm.email, NPM_PASSWORD: npm.password, NPM_TIMEOUT_MS: '1000' },
  });
  return { npm, t, upstream };
}

/** Between tests: NPM up with no fault left over, the database accepting writes again. */
export async function resetHarness({ npm, t }: NpmHarness): Promise<void> {
  await npm.up();
  await t.db.prisma.$executeRawUnsafe('DROP TRIGGER IF EXISTS test_refuse_proxy ON "Proxy"');
}

/**
 * An SDK call as `{ data, errors }`: the sync tests assert on failures (their codes, and what the
 * database holds after) as often as on results.
 */
async function settled<T>(call: Promise<T>): Promise<{ data?: T | null; errors?: GraphQLErrorShape[] }> {
  try {
    return { data: await call };
  } catch (error) {
    if (!(error instanceof StreamGateError)) throw error;
    return { data: error.data as T | null, errors: error.errors };
  }
}

export function proxyApi({ t, npm, upstream }: NpmHarness) {
  const sg = sdkClient(t);
  const create = (domain: string, destination = upstream.url) =>
    settled(sg.createProxy({ input: { domain, destination } }));
  return {
    create,
    update: (id: string, input: UpdateProxyInput) => settled(sg.updateProxy({ id, input })),
    remove: (id: string) => settled(sg.deleteProxy({ id })),
    async created(domain: string, destination = upstream.url): Promise<ProxyShape> {
      const res = await create(domain, destination);
      expect(res.errors).toBeUndefined();
      return res.data?.createProxy.proxy as ProxyShape;
    },
    hostFor: (domain: string) => [...npm.hosts.values()].filter((h) => h.domain_names.includes(domain)),
    rowFor: (domain: string) => t.db.prisma.proxy.findUnique({ where: { domain } }),
    rowById: (id: string) => t.db.prisma.proxy.findUniqueOrThrow({ where: { id } }),
    /** The requests NPM received for one host, e.g. `requestsFor('PUT', 3)`. */
    requestsFor: (method: string, hostId: number | null) =>
      npm.requests.filter((r) => r.method === method && r.path === `/api/nginx/proxy-hosts/${hostId}`),
    /** Makes the database refuse writes (`op`) of proxies whose domain starts with `refused`: a real failing write. */
    async refuseWrites(op: 'INSERT OR UPDATE' | 'DELETE') {
      await t.db.prisma.$executeRawUnsafe(`
        CREATE OR REPLACE FUNCTION test_refuse_proxy() RETURNS trigger AS $$
        BEGIN
          IF (TG_OP = 'DELETE' AND OLD.domain LIKE 'refused%') OR (TG_OP <> 'DELETE' AND NEW.domain LIKE 'refused%') THEN
            RAISE EXCEPTION 'refused by the test';
          END IF;
          RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$ LANGUAGE plpgsql`);
      await t.db.prisma.$executeRawUnsafe(
        `CREATE TRIGGER test_refuse_proxy BEFORE ${op} ON "Proxy" FOR EACH ROW EXECUTE FUNCTION test_refuse_proxy()`,
      );
    },
    /** The newest stored event of a type, once it is there (events are written in batches). */
    lastEvent: (type: string, check: (event: { severity: string; details: unknown }) => void) =>
      eventually(async () => {
        const [event] = await t.db.prisma.eventLog.findMany({
          where: { type },
          orderBy: { seq: 'desc' },
          take: 1,
          select: { severity: true, details: true },
        });
        if (!event) throw new Error(`no ${type} event yet`);
        check(event);
        return event;
      }),
  };
}
