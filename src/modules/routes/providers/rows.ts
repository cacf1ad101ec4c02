import type { Logger } from '../../../lib/logger.js';
import type { EventBus } from '../../events/bus.js';
import type { AppEvent } from '../../events/types.js';
import type { ProviderName, RouteSpec } from '../types.js';
import type { RouteProvider, RouteSink } from './provider.js';

export interface RowsProviderDeps {
  events: Pick<EventBus, 'react'>;
  log: Logger;
  /** How often every row is read again (changes through another instance, or by hand in SQL). */
  resyncMs: number;
}

export interface RowsSource {
  name: ProviderName;
  /** The events of a created, updated or deleted row; their `details.id` is the row's id. */
  changes: readonly AppEvent['type'][];
  /** Every row's route, in a stable order; each spec's `ref.id` is its row's id. */
  loadAll(): Promise<RouteSpec[]>;
  /** One row's route; null when the row is gone. */
  loadOne(id: string): Promise<RouteSpec | null>;
}

/**
 * A provider over rows of our own database (proxies, nodes). A change made through this instance
 * is applied before the mutation answers: the provider reacts to the change's audit event (which
 * the mutation awaits) by reading that one row. Everything is read again every `resyncMs`, for
 * changes made elsewhere; a resync that overlapped a change is dropped (it may predate it).
 */
export function rowsRouteProvider(source: RowsSource, deps: RowsProviderDeps): RouteProvider {
  const specs = new Map<string, RouteSpec>();
  /** Bumped by every change applied: a full read that started before one is stale. */
  let version = 0;
  /** The latest read started per row, so an older read finishing last cannot win. */
  const reads = new Map<string, number>();
  let readCounter = 0;
  let sink: RouteSink | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopReacting: (() => void) | undefined;
  let closed = false;
  let resyncing: Promise<void> | undefined;

  const publish = () => sink?.update([...specs.values()]);

  /** Reads every row; false when a change landed meanwhile (then nothing is applied). */
  async function readAll(): Promise<boolean> {
    const started = version;
    const rows = await source.loadAll();
    if (closed || version !== started) return false;
    const previous = new Map(specs);
    specs.clear();
    for (const spec of rows) {
      const id = spec.ref?.id ?? spec.origin;
      const before = previous.get(id);
      // The same object for an unchanged row: the registry then skips it by identity.
      specs.set(id, before && JSON.stringify(before) === JSON.stringify(spec) ? before : spec);
    }
    publish();
    return true;
  }

  async function react(entry: { details: unknown }): Promise<void> {
    const id = (entry.details as { id?: unknown } | null)?.id;
    if (typeof id !== 'string' || closed) return;
    version++;
    const read = ++readCounter;
    reads.set(id, read);
    const spec = await source.loadOne(id);
    if (closed || reads.get(id) !== read) return;
    reads.delete(id);
    if (spec) specs.set(id, spec);
    else specs.delete(id);
    publish();
  }

  function resync(): void {
    resyncing ??= readAll()
      .catch((error: unknown) => {
        if (!closed) sink?.failed(error);
      })
      .then(() => {
        resyncing = undefined;
      });
  }

  return {
    name: source.name,
    async start(target) {
      sink = target;
      stopReacting = deps.events.react(source.changes, react);
      // A change that lands while the first read runs makes it stale: read again (bounded).
      let loaded = false;
      for (let attempt = 0; attempt < 5 && !loaded && !closed; attempt++) loaded = await readAll();
      if (!loaded && !closed) publish(); // every change since was applied row by row
      timer = setInterval(resync, deps.resyncMs);
      timer.unref();
    },
    async close() {
      closed = true;
      stopReacting?.();
      clearInterval(timer);
      await resyncing;
    },
  };
}
