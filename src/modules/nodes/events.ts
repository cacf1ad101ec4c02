import type { NodeKind } from '../../generated/prisma/enums.js';
import type { EventOf } from '../events/index.js';

type NodeRef = { id: string; kind: NodeKind; name: string };

declare module '../events/index.js' {
  interface EventCatalog {
    'node.created': EventOf<'node.created', 'nodes', NodeRef & { host: string; apiPort: number }>;
    'node.updated': EventOf<'node.updated', 'nodes', NodeRef & { changes: Record<string, unknown> }>;
    'node.deleted': EventOf<'node.deleted', 'nodes', NodeRef>;
  }
}
