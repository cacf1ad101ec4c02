import { describe, expect, it } from 'vitest';
import { startTestApp } from '../helpers/app.js';
import { startFakeNode } from '../helpers/fake-node.js';
import { eventually } from './helpers.js';

/**
 * The monitor as `serve` runs it: started by the app, timed by the settings, stopped with the
 * app. (Other test apps run with HEALTH_MONITOR=off, so scheduled checks never race their asserts.)
 */
describe('health monitor in the served app', () => {
  it('checks registered nodes on the settings interval, and stops checking when the app stops', async () => {
    const node = await startFakeNode();
    const t = await startTestApp({ env: { HEALTH_MONITOR: 'on' } });
    const settings = await t.gql(
      'mutation { updateSettings(input: { healthCheckIntervalSeconds: 1 }) { healthCheckIntervalSeconds } }',
    );
    expect(settings.data).toEqual({ updateSettings: { healthCheckIntervalSeconds: 1 } });
    const created = await t.gql<{ createCacheNode: { id: string } }, unknown>(
      `mutation { createCacheNode(input: { name: "watched", host: "127.0.0.1", apiPort: ${node.port} }) { id } }`,
    );
    const id = created.data?.createCacheNode.id;
    expect(id).toBeTypeOf('string');

    // Nobody pings it by hand: only the scheduler can make it HEALTHY.
    await eventually(async () => {
      const res = await t.gql(`{ cacheNode(id: "${id}") { status health { status checkedAt } } }`);
      expect(res.data).toMatchObject({ cacheNode: { status: 'HEALTHY', health: { status: 'HEALTHY' } } });
    }, 10_000);
    const pings = () => node.requests.filter((r) => r.url === '/api/ping').length;
    await eventually(() => expect(pings()).toBeGreaterThanOrEqual(3), 10_000);

    // Deleting a node through the API takes it off the schedule at once, not at the next listing.
    const doomed = await t.gql<{ createSlbNode: { id: string } }, unknown>(
      `mutation { createSlbNode(input: { name: "doomed", host: "127.0.0.1", apiPort: ${node.port} }) { id } }`,
    );
    const doomedId = doomed.data?.createSlbNode.id;
    await eventually(() => expect(t.app.services.health.stats().scheduled).toBe(2), 10_000);
    expect((await t.gql(`mutation { deleteSlbNode(id: "${doomedId}") }`)).data).toEqual({ deleteSlbNode: doomedId });
    expect(t.app.services.health.stats().scheduled).toBe(1);

    await t.app.stop();
    const afterStop = pings();
    expect(afterStop).toBeGreaterThanOrEqual(3);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(pings(), 'no check after stop').toBe(afterStop);
  });
});
