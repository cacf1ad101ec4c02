import { describe, expect, it } from 'vitest';
import { startTestApp } from '../helpers/app.js';
import { startFakeNode } from '../helpers/fake-node.js';
import { sdkClient } from '../helpers/sdk.js';
import { eventually } from './helpers.js';

/**
 * The monitor as `serve` runs it: started by the app, timed by the settings, stopped with the
 * app. (Other test apps run with HEALTH_MONITOR=off, so scheduled checks never race their asserts.)
 */
describe('health monitor in the served app', () => {
  it('checks registered nodes on the settings interval, and stops checking when the app stops', async () => {
    const node = await startFakeNode();
    const t = await startTestApp({ env: { HEALTH_MONITOR: 'on' } });
    const sg = sdkClient(t);
    const settings = await sg.updateSettings({ input: { healthCheckIntervalSeconds: 1 } });
    expect(settings.updateSettings.healthCheckIntervalSeconds).toBe(1);
    const created = await sg.createCacheNode({ input: { name: 'watched', host: '127.0.0.1', apiPort: node.port } });
    const { id } = created.createCacheNode;

    // Nobody pings it by hand: only the scheduler can make it HEALTHY.
    await eventually(async () => {
      const { cacheNode } = await sg.cacheNode({ id });
      expect(cacheNode).toMatchObject({ status: 'HEALTHY', health: { status: 'HEALTHY' } });
    }, 10_000);
    const pings = () => node.requests.filter((r) => r.url === '/api/ping').length;
    await eventually(() => expect(pings()).toBeGreaterThanOrEqual(3), 10_000);

    // Deleting a node through the API takes it off the schedule at once, not at the next listing.
    const doomed = await sg.createSlbNode({ input: { name: 'doomed', host: '127.0.0.1', apiPort: node.port } });
    const doomedId = doomed.createSlbNode.id;
    await eventually(() => expect(t.app.services.health.stats().scheduled).toBe(2), 10_000);
    expect(await sg.deleteSlbNode({ id: doomedId })).toEqual({ deleteSlbNode: doomedId });
    expect(t.app.services.health.stats().scheduled).toBe(1);

    await t.app.stop();
    const afterStop = pings();
    expect(afterStop).toBeGreaterThanOrEqual(3);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(pings(), 'no check after stop').toBe(afterStop);
  });
});
