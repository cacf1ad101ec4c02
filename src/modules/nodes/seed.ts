import type { Db } from '../../db/client.js';
import type { NodeKind } from '../../generated/prisma/enums.js';

/** A few demo nodes for a first look at the API. Idempotent: existing names are left alone. */
const DEMO_NODES: { kind: NodeKind; name: string; host: string; apiPort: number; httpPort?: number }[] = [
  { kind: 'STREAMER', name: 'streamer-eu-1', host: '127.0.0.1', apiPort: 8081, httpPort: 8080 },
  { kind: 'STREAMER', name: 'streamer-us-1', host: '127.0.0.1', apiPort: 8083, httpPort: 8082 },
  { kind: 'CACHE', name: 'cache-eu-1', host: '127.0.0.1', apiPort: 8091 },
  { kind: 'SLB', name: 'slb-edge-1', host: '127.0.0.1', apiPort: 8095 },
];

export async function seedDemoNodes(db: Db): Promise<number> {
  const { count } = await db.node.createMany({ data: DEMO_NODES, skipDuplicates: true });
  return count;
}
