import { LRUCache } from 'lru-cache';
import type { Db } from '../../db/client.js';
import { isUuid } from '../../lib/uuid.js';
import type { NodeEndpoint } from './clients/index.js';
import type { NodeKind } from './kinds.js';

type Entry = { kind: NodeKind; endpoint: NodeEndpoint } | null;

/**
 * Where each node's API is, for the passthrough's hot path: read from the registry once, then
 * served from memory until the node changes. Every write through StreamGate (create, update,
 * delete) calls `forget(id)` synchronously after it commits, so a changed host applies to the very
 * next request, as a per-request read would.
 *
 * Why not read the registry per request: a Prisma lookup costs ~1–2.7 ms of CPU on the embedded
 * database and does not yield (PGlite runs in-process), which capped the passthrough at a tenth of
 * @fastify/http-proxy's throughput (bench/passthrough.ts).
 *
 * A write by another StreamGate instance empties it as soon as that instance announces it (REDIS_URL,
 * src/cluster); writes that bypass StreamGate (manual SQL) apply within TTL_MS.
 */
export class NodeDirectory {
  static readonly TTL_MS = 5_000;
  // Promises, so concurrent misses for one node share one lookup; bounded, so that probing random
  // ids cannot grow it without limit (unknown ids are remembered as null too).
  private readonly entries = new LRUCache<string, Promise<Entry>>({ max: 10_000, ttl: NodeDirectory.TTL_MS });

  constructor(private readonly db: Db) {}

  async find(rawId: string, kind: NodeKind): Promise<NodeEndpoint | null> {
    if (!isUuid(rawId)) return null;
    // UUIDs compare case-insensitively in PostgreSQL: one entry per node, whatever the spelling.
    const id = rawId.toLowerCase();
    let entry = this.entries.get(id);
    if (!entry) {
      const lookup = this.lookup(id);
      this.entries.set(id, lookup);
      // A failed read is no answer to remember; a newer lookup for the id stays in place.
      lookup.catch(() => {
        if (this.entries.peek(id) === lookup) this.entries.delete(id);
      });
      entry = lookup;
    }
    const found = await entry;
    return found?.kind === kind ? found.endpoint : null;
  }

  /** Nodes changed elsewhere (another instance): every next request reads the registry again. */
  clear(): void {
    this.entries.clear();
  }

  /** The node changed or is gone: the next request reads the registry again. */
  forget(id: string): void {
    this.entries.delete(id.toLowerCase());
  }

  private async lookup(id: string): Promise<Entry> {
    const node = await this.db.node.findUnique({ where: { id }, select: { kind: true, host: true, apiPort: true } });
    return node && { kind: node.kind, endpoint: { host: node.host, apiPort: node.apiPort } };
  }
}
