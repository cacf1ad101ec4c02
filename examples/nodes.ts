/**
 * Registers a streamer and a cache node, pings both, prints what came back, and removes them.
 * Run: `npx tsx examples/nodes.ts` (NODE_HOST / NODE_API_PORT say where the nodes' APIs are;
 * an unreachable node is a result, UNHEALTHY, not an error).
 */
import { connect } from './connect.js';

const sg = connect();
const host = process.env.NODE_HOST ?? '127.0.0.1';
const apiPort = Number(process.env.NODE_API_PORT ?? 8081);
const suffix = Date.now().toString(36);

const { createStreamer } = await sg.createStreamer({
  input: { name: `example-streamer-${suffix}`, host, apiPort, httpPort: 8080 },
});
const { createCacheNode } = await sg.createCacheNode({ input: { name: `example-cache-${suffix}`, host, apiPort } });
try {
  for (const node of [createStreamer, createCacheNode]) {
    const { ping } = await sg.ping({ id: node.id });
    const how = ping.error ? `: ${ping.error}` : ` in ${ping.latencyMs} ms`;
    console.log(`${node.__typename} ${node.name} (${node.host}:${node.apiPort}) is ${ping.status}${how}`);
  }
  const { streamers } = await sg.streamers({ first: 100 });
  console.log(`${streamers.edges.length} streamer(s) registered`);
} finally {
  await sg.deleteStreamer({ id: createStreamer.id });
  await sg.deleteCacheNode({ id: createCacheNode.id });
  console.log('removed the example nodes');
}
