import { type Cache, useResponseCache } from '@envelop/response-cache';
import type { ExecutionResult } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { WriteClock } from '../../db/write-clock.js';
import type { Context } from '../../graphql/context.js';

/**
 * Fields whose value does not come from the database (so no write moves the clock when it
 * changes): a query that selects one is not cached (0), or only briefly.
 */
const LIVE_FIELDS: Record<string, number> = {
  // The route registry and its health live in memory; NPM's hosts are read from NPM.
  'Query.route': 0,
  'Query.routes': 0,
  'Query.routesByProvider': 0,
  'Query.allProxies': 0,
  'Query.cluster': 0,
  // Counted in memory while a session streams.
  'Session.bytesRelayed': 0,
  'Session.framesRelayed': 0,
  'Session.operatorConnects': 0,
  'Session.operatorDisconnects': 0,
  'Session.operators': 0,
  // Asked of the node itself.
  'Streamer.streams': 0,
  'Streamer.traffic': 0,
  // Stored, but `uptimeSeconds` moves with the clock: a second old at most.
  HealthInfo: 1_000,
};

/** How many answers are kept (least recently used go first). */
const MAX_ENTRIES = 1_000;

/**
 * The response cache for read-only operations (envelop's response cache), invalidated by the
 * database's write clock instead of by entity: a cached answer was computed at one generation and
 * is served only while the clock still shows it, so any committed write (a mutation, a health
 * check's update, the event log, another module's background work) empties it, and nothing is
 * ever served stale after a mutation returns. Answers are kept per principal (a token's id), so
 * one caller never sees another's. Answers with errors are not kept; mutations and subscriptions
 * are never cached. `ttlMs` bounds how old an answer can get (0 turns the cache off).
 */
export function useReadCache(cache: GenerationCache, ttlMs: number) {
  return useResponseCache<Context>({
    enabled: () => ttlMs > 0,
    session: (ctx) => ctx.principal.id,
    ttl: ttlMs,
    ttlPerSchemaCoordinate: LIVE_FIELDS,
    cache,
    // Entity invalidation is not needed: the write clock covers every write, and a created row
    // (which no cached entity names) too.
    invalidateViaMutation: false,
    buildResponseCacheKey: ({ documentString, operationName, variableValues, sessionId }) =>
      cache.keyFor([sessionId ?? '', operationName ?? '', documentString, JSON.stringify(variableValues ?? {})]),
    shouldCacheResult: ({ result }) => !result.errors,
    includeExtensionMetadata: false,
  });
}

/** The answers of the current write generation; emptied each time the clock moves. */
export class GenerationCache implements Cache {
  private readonly entries = new LRUCache<string, ExecutionResult>({ max: MAX_ENTRIES });
  /** Lookups answered from the cache, and those that were not (for /metrics). */
  readonly stats = { hits: 0, misses: 0 };

  constructor(private readonly clock: WriteClock) {
    clock.onAdvance(() => this.entries.clear());
  }

  /** The key carries the generation the read starts at (taken before it runs). */
  keyFor(parts: string[]): string {
    return `${this.clock.generation}\0${parts.join('\0')}`;
  }

  get(key: string): ExecutionResult | undefined {
    const found = this.entries.get(key);
    if (found) this.stats.hits++;
    else this.stats.misses++;
    return found;
  }

  set(key: string, result: ExecutionResult, _entities: unknown, ttl: number): void {
    // A read that overlapped a write may hold rows from before it: drop it.
    if (!key.startsWith(`${this.clock.generation}\0`)) return;
    this.entries.set(key, result, Number.isFinite(ttl) ? { ttl } : {});
  }

  invalidate(): void {
    // The write clock invalidates; nothing to do per entity.
  }
}
