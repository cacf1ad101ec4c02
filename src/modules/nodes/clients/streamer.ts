import { NodeApiClient } from './base.js';

/**
 * A streamer node's API. Its payloads are the node's own (not ours to define), so they travel
 * as JSON values; the paths are the node's documented ones (README, "Node APIs").
 */
export class StreamerClient extends NodeApiClient {
  getStreams(): Promise<unknown> {
    return this.json('GET', '/api/streams');
  }

  createStream(definition: unknown): Promise<unknown> {
    return this.json('POST', '/api/streams', definition);
  }

  async deleteStream(streamId: string): Promise<void> {
    // Encoded so that an id can never climb out of /api/streams/ on the node.
    await this.json('DELETE', `/api/streams/${encodeURIComponent(streamId)}`);
  }

  getTraffic(): Promise<unknown> {
    return this.json('GET', '/api/traffic');
  }
}
