import type { Dispatcher } from 'undici';
import type { NodeKind } from '../../../generated/prisma/enums.js';
import type { NodeApiClient, NodeEndpoint } from './base.js';
import { CproxyClient } from './cproxy.js';
import { ElbClient } from './elb.js';
import { StreamerClient } from './streamer.js';

export * from './base.js';
export { CproxyClient, ElbClient, StreamerClient };

export function clientFor(kind: NodeKind, endpoint: NodeEndpoint, agent: Dispatcher): NodeApiClient {
  switch (kind) {
    case 'STREAMER':
      return new StreamerClient(endpoint, agent);
    case 'CACHE':
      return new CproxyClient(endpoint, agent);
    case 'SLB':
      return new ElbClient(endpoint, agent);
  }
}
