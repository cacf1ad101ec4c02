import type { StreamerStreamsQuery, StreamGateClient } from '@streamgate/client';
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { closedPort, type FakeNode, startFakeNode } from '../helpers/fake-node.js';
import { rejection, sdkClient } from '../helpers/sdk.js';

let app: TestApp;
let sg: StreamGateClient;
let node: FakeNode;
let id: string;
beforeAll(async () => {
  app = await startTestApp();
  sg = sdkClient(app);
  node = await startFakeNode();
  const { createStreamer } = await sg.createStreamer({
    input: { name: 'api-s1', host: '127.0.0.1', httpPort: 1935, apiPort: node.port },
  });
  id = createStreamer.id;
});

const createStream = async (streamerId: string, input: unknown) =>
  (await sg.createStream({ streamerId, input })).createStream;
const deleteStream = async (streamerId: string, streamId: string) =>
  (await sg.deleteStream({ streamerId, streamId })).deleteStream;
const view = async (streamerId: string) => (await sg.streamerStreams({ id: streamerId })).streamer;
/** A read whose node call failed: the fields that could be read, and every error's code. */
async function partial(streamerId: string) {
  const error = await rejection(sg.streamerStreams({ id: streamerId }));
  return { data: error.data as StreamerStreamsQuery, codes: error.errors.map((e) => e.extensions?.code), error };
}

describe('streamer API through GraphQL', () => {
  it("creates, lists and deletes streams on the node, passing the node's JSON through", async () => {
    const stream = (await createStream(id, { name: 'cam-1', bitrate: 4500 })) as { id: string; name: string };
    expect(stream).toMatchObject({ name: 'cam-1', bitrate: 4500 });
    expect(node.streams.has(stream.id)).toBe(true);

    const read = await view(id);
    expect(read?.streams).toEqual([stream]);
    expect(read?.traffic).toEqual({ bytesIn: 1000, bytesOut: 5000 });

    expect(await deleteStream(id, stream.id)).toBe(true);
    expect(node.streams.size).toBe(0);
  });

  it('encodes a stream id so it cannot reach another path on the node', async () => {
    const error = await rejection(deleteStream(id, '../ping?x=1'));
    expect(node.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/api/streams/..%2Fping%3Fx%3D1' });
    expect(error.code).toBe('NOT_FOUND'); // the node's own answer, passed on with its reason
    expect(error.message).toContain('HTTP 404: {"error":"no such stream"}');
  });

  it("passes a node's 4xx on as BAD_USER_INPUT and its 5xx as UPSTREAM_UNAVAILABLE, with its reason", async () => {
    node.override = (req, res) => {
      if (req.method !== 'POST') return false;
      const bad = req.url === '/api/streams' && req.headers['content-type'] === 'application/json';
      res.writeHead(bad ? 422 : 500, { 'content-type': 'application/json' }).end('{"error":"bitrate too high"}');
      return true;
    };
    try {
      const rejected = await rejection(createStream(id, { bitrate: 1e9 }));
      expect(rejected.code).toBe('BAD_USER_INPUT');
      expect(rejected.message).toContain('HTTP 422: {"error":"bitrate too high"}');
      node.override = (req, res) => {
        if (req.method !== 'POST') return false;
        res.writeHead(500).end();
        return true;
      };
      expect((await rejection(createStream(id, {}))).code).toBe('UPSTREAM_UNAVAILABLE');
    } finally {
      node.override = undefined;
    }
  });

  it('refuses an answer larger than 4 MiB instead of buffering it', async () => {
    node.override = (req, res) => {
      if (req.url !== '/api/traffic') return false;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`"${'x'.repeat(5 * 1024 * 1024)}"`);
      return true;
    };
    try {
      const res = await partial(id);
      expect(res.data.streamer?.traffic).toBeNull();
      expect(res.codes).toEqual(['UPSTREAM_UNAVAILABLE']);
      expect(res.error.message).toContain('answer larger than 4194304 bytes');
    } finally {
      node.override = undefined;
    }
  });

  it('reports an unreachable node as UPSTREAM_UNAVAILABLE on the field, keeping the rest', async () => {
    const dead = await sg.createStreamer({
      input: { name: 'api-dead', host: '127.0.0.1', httpPort: 1935, apiPort: await closedPort() },
    });
    const res = await partial(dead.createStreamer.id);
    expect(res.data.streamer?.id).toBe(dead.createStreamer.id);
    expect(res.data.streamer?.streams).toBeNull();
    expect(res.codes).toEqual(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE']);
  });

  it('uses the current host and port on every call', async () => {
    const other = await startFakeNode();
    other.streams.set('only-here', { id: 'only-here' });
    await sg.updateStreamer({ id, input: { apiPort: other.port } });
    expect((await view(id))?.streams).toEqual([{ id: 'only-here' }]);
    await sg.updateStreamer({ id, input: { apiPort: node.port } });
  });

  it('answers NOT_FOUND for stream calls on an unknown or non-streamer id', async () => {
    expect((await rejection(createStream('nope', {}))).code).toBe('NOT_FOUND');
    const cache = await sg.createCacheNode({ input: { name: 'api-c', host: '127.0.0.1', apiPort: 1 } });
    expect((await rejection(deleteStream(cache.createCacheNode.id, 'x'))).code).toBe('NOT_FOUND');
  });
});
