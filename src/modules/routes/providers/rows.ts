import type { Logger } from '../../../lib/logger.js';
import type { AppEvent, EventBus } from '../../events/index.js';
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
 * changes made elsewhere; a row changed here while that read ran keeps what its own read found
 * (the full read may predate the change).
 */
export function rowsRouteProvider(source: RowsSource, deps: RowsProviderDeps): RouteProvider {
  let specs = new Map<string, RouteSpec>();
  /** Rows changed here while a full read runs: the read's view of them may be older. */
  let touched: Set<string> | null = null;
  /** The latest read started per row, so an older read finishing last cannot win. */
  const reads = new Map<string, number>();
  let readCounter = 0;
  let sink: RouteSink | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopReacting: (() => void) | undefined;
  let closed = false;
  let resyncing: Promise<void> | undefined;

  const publish = () => sink?.update([...specs.values()]);

  async function readAll(): Promise<void> {
    touched = new Set();
    try {
      const rows = await source.loadAll();
      if (closed) return;
      const changed = touched;
      const next = new Map<string, RouteSpec>();
      for (const spec of rows) {
        const id = spec.ref?.id ?? spec.origin;
        const current = specs.get(id);
        if (changed.has(id)) {
          if (current) next.set(id, current); // what this instance's own read of the row found
        } else {
          // The same object for an unchanged row: the registry then skips it by identity.
          next.set(id, current && JSON.stringify(current) === JSON.stringify(spec) ? current : spec);
        }
      }
      // Rows created here while the read ran.
      for (const id of changed) {
        const current = specs.get(id);
        if (current && !next.has(id)) next.set(id, current);
      }
      specs = next;
      publish();
    } finally {
      touched = null;
    }
  }

  async function react(entry: { details: unknown }): Promise<void> {
    const id = (entry.details as { id?: unknown } | null)?.id;
    if (typeof id !== 'string' || closed) return;
    touched?.add(id);
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
      await readAll();
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
