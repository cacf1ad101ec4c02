import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../generated/gql.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { closedPort, type FakeNode, startFakeNode } from '../helpers/fake-node.js';

const CreateStreamer = graphql(`
  mutation ApiCreateStreamer($input: CreateStreamerInput!) { createStreamer(input: $input) { id } }
`);
const MoveStreamer = graphql(`
  mutation MoveStreamer($id: ID!, $port: Int!) { updateStreamer(id: $id, input: { apiPort: $port }) { id } }
`);
const StreamerView = graphql(`query StreamerView($id: ID!) { streamer(id: $id) { name streams traffic } }`);
const CreateStream = graphql(`
  mutation CreateStream($id: ID!, $input: JSON!) { createStream(streamerId: $id, input: $input) }
`);
const DeleteStream = graphql(`
  mutation DeleteStream($id: ID!, $streamId: String!) { deleteStream(streamerId: $id, streamId: $streamId) }
`);

let app: TestApp;
let node: FakeNode;
let id: string;
beforeAll(async () => {
  app = await startTestApp();
  node = await startFakeNode();
  const res = await app.gql(CreateStreamer, {
    input: { name: 'api-s1', host: '127.0.0.1', httpPort: 1935, apiPort: node.port },
  });
  id = res.data?.createStreamer.id ?? '';
});

describe('streamer API through GraphQL', () => {
  it("creates, lists and deletes streams on the node, passing the node's JSON through", async () => {
    const created = await app.gql(CreateStream, { id, input: { name: 'cam-1', bitrate: 4500 } });
    const stream = created.data?.createStream as { id: string; name: string; bitrate: number };
    expect(stream).toMatchObject({ name: 'cam-1', bitrate: 4500 });
    expect(node.streams.has(stream.id)).toBe(true);

    const view = await app.gql(StreamerView, { id });
    expect(view.data?.streamer?.streams).toEqual([stream]);
    expect(view.data?.streamer?.traffic).toEqual({ bytesIn: 1000, bytesOut: 5000 });

    expect((await app.gql(DeleteStream, { id, streamId: stream.id })).data?.deleteStream).toBe(true);
    expect(node.streams.size).toBe(0);
  });

  it('encodes a stream id so it cannot reach another path on the node', async () => {
    const res = await app.gql(DeleteStream, { id, streamId: '../ping?x=1' });
    expect(node.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/api/streams/..%2Fping%3Fx%3D1' });
    expect(codes(res)).toEqual(['NOT_FOUND']); // the node's own answer, passed on with its reason
    expect(res.errors?.[0]?.message).toContain('HTTP 404: {"error":"no such stream"}');
  });

  it("passes a node's 4xx on as BAD_USER_INPUT and its 5xx as UPSTREAM_UNAVAILABLE, with its reason", async () => {
    node.override = (req, res) => {
      if (req.method !== 'POST') return false;
      const bad = req.url === '/api/streams' && req.headers['content-type'] === 'application/json';
      res.writeHead(bad ? 422 : 500, { 'content-type': 'application/json' }).end('{"error":"bitrate too high"}');
      return true;
    };
    try {
      const rejected = await app.gql(CreateStream, { id, input: { bitrate: 1e9 } });
      expect(codes(rejected)).toEqual(['BAD_USER_INPUT']);
      expect(rejected.errors?.[0]?.message).toContain('HTTP 422: {"error":"bitrate too high"}');
      node.override = (req, res) => {
        if (req.method !== 'POST') return false;
        res.writeHead(500).end();
        return true;
      };
      expect(codes(await app.gql(CreateStream, { id, input: {} }))).toEqual(['UPSTREAM_UNAVAILABLE']);
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
      const res = await app.gql(StreamerView, { id });
      expect(res.data?.streamer?.traffic).toBeNull();
      expect(codes(res)).toEqual(['UPSTREAM_UNAVAILABLE']);
      expect(res.errors?.[0]?.message).toContain('answer larger than 4194304 bytes');
    } finally {
      node.override = undefined;
    }
  });

  it('reports an unreachable node as UPSTREAM_UNAVAILABLE on the field, keeping the rest', async () => {
    const dead = await app.gql(CreateStreamer, {
      input: { name: 'api-dead', host: '127.0.0.1', httpPort: 1935, apiPort: await closedPort() },
    });
    const res = await app.gql(StreamerView, { id: dead.data?.createStreamer.id ?? '' });
    expect(res.data?.streamer?.name).toBe('api-dead');
    expect(res.data?.streamer?.streams).toBeNull();
    expect(codes(res)).toEqual(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE']);
  });

  it('uses the current host and port on every call', async () => {
    const other = await startFakeNode();
    other.streams.set('only-here', { id: 'only-here' });
    await app.gql(MoveStreamer, { id, port: other.port });
    expect((await app.gql(StreamerView, { id })).data?.streamer?.streams).toEqual([{ id: 'only-here' }]);
    await app.gql(MoveStreamer, { id, port: node.port });
  });

  it('answers NOT_FOUND for stream calls on an unknown or non-streamer id', async () => {
    expect(codes(await app.gql(CreateStream, { id: 'nope', input: {} }))).toEqual(['NOT_FOUND']);
    const cache = await app.gql(
      'mutation { createCacheNode(input: {name: "api-c", host: "127.0.0.1", apiPort: 1}) { id } }',
    );
    const cacheId = (cache.data as { createCacheNode: { id: string } }).createCacheNode.id;
    expect(codes(await app.gql(DeleteStream, { id: cacheId, streamId: 'x' }))).toEqual(['NOT_FOUND']);
  });
});
