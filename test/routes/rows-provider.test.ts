import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/logger.js';
import type { Reaction } from '../../src/modules/events/bus.js';
import type { RouteSink } from '../../src/modules/routes/providers/provider.js';
import { rowsRouteProvider } from '../../src/modules/routes/providers/rows.js';
import type { RouteSpec } from '../../src/modules/routes/types.js';
import { dispose } from '../helpers/leftovers.js';

/**
 * The database-backed provider's bookkeeping, with the rows in a Map and each read held until the
 * test releases it, so the races (a change during a full read, two reads of one row) are exact.
 */

const spec = (id: string, upstream = `http://10.0.0.1/${id}`): RouteSpec => ({
  kind: 'HTTP',
  alias: id,
  provider: 'proxies',
  origin: `proxy ${id}`,
  ref: { kind: 'proxy', id },
  upstream,
});

function harness() {
  const rows = new Map<string, RouteSpec>();
  const held: { release: () => void }[] = [];
  let holding = false;
  const wait = async () => {
    if (!holding) return;
    await new Promise<void>((release) => held.push({ release }));
  };
  let reaction: Reaction | undefined;
  const updates: string[][] = [];
  const sink: RouteSink = {
    update: (specs) => updates.push(specs.map((s) => (s.kind === 'HTTP' ? `${s.alias}=${s.upstream}` : s.alias))),
    failed: () => {},
    gone: () => {},
  };
  const provider = dispose(
    rowsRouteProvider(
      {
        name: 'proxies',
        changes: ['proxy.created', 'proxy.updated', 'proxy.deleted'],
        async loadAll() {
          const snapshot = [...rows.values()];
          await wait();
          return snapshot;
        },
        async loadOne(id) {
          const row = rows.get(id) ?? null;
          await wait();
          return row;
        },
      },
      {
        events: {
          react: (_types, r) => {
            reaction = r;
            return () => {
              reaction = undefined;
            };
          },
        },
        log: createLogger('silent'),
        resyncMs: 60_000,
      },
    ),
    (p) => p.close(),
  );
  const changed = (id: string) => reaction?.({ details: { id } } as never);
  return {
    rows,
    provider,
    sink,
    updates,
    changed,
    hold: (on: boolean) => {
      holding = on;
    },
    releaseAll: () => {
      for (const h of held.splice(0)) h.release();
    },
    releaseOne: (index: number) => held.splice(index, 1)[0]?.release(),
    heldCount: () => held.length,
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('rowsRouteProvider', () => {
  it('hands over every row at start, then applies one changed row at a time', async () => {
    const h = harness();
    h.rows.set('a', spec('a'));
    await h.provider.start(h.sink);
    expect(h.updates).toEqual([['a=http://10.0.0.1/a']]);

    h.rows.set('b', spec('b'));
    await h.changed('b');
    h.rows.set('a', spec('a', 'http://10.0.0.9/'));
    await h.changed('a');
    h.rows.delete('b');
    await h.changed('b');
    expect(h.updates.slice(1)).toEqual([
      ['a=http://10.0.0.1/a', 'b=http://10.0.0.1/b'],
      ['a=http://10.0.0.9/', 'b=http://10.0.0.1/b'],
      ['a=http://10.0.0.9/'],
    ]);
  });

  it('a full read that changes overtook keeps what the changes found, and every other row it read', async () => {
    const h = harness();
    h.rows.set('keep', spec('keep'));
    h.rows.set('moved', spec('moved', 'http://old/'));
    h.rows.set('gone', spec('gone'));
    h.hold(true);
    const started = h.provider.start(h.sink);
    await tick();
    // The full read is under way and saw the rows as above; meanwhile three changes land here.
    h.hold(false);
    h.rows.set('new', spec('new'));
    await h.changed('new');
    h.rows.set('moved', spec('moved', 'http://new/'));
    await h.changed('moved');
    h.rows.delete('gone');
    await h.changed('gone');
    h.releaseAll(); // the older full read finishes last: it must not undo them
    await started;
    expect(h.updates.at(-1)).toEqual(['keep=http://10.0.0.1/keep', 'moved=http://new/', 'new=http://10.0.0.1/new']);
  });

  it('of two reads of one row, the later one wins even when it finishes first', async () => {
    const h = harness();
    h.rows.set('a', spec('a'));
    await h.provider.start(h.sink);
    h.hold(true);
    h.rows.set('a', spec('a', 'http://old/'));
    const first = h.changed('a');
    await tick();
    h.rows.set('a', spec('a', 'http://new/'));
    const second = h.changed('a');
    await tick();
    expect(h.heldCount()).toBe(2);
    h.releaseOne(1); // the second read finishes first
    await second;
    h.releaseOne(0);
    await first;
    expect(h.updates.at(-1)).toEqual(['a=http://new/']);
  });

  it('keeps an unchanged row’s spec object across a full read (the registry skips it by identity)', async () => {
    const h = harness();
    h.rows.set('a', spec('a'));
    const received: (readonly RouteSpec[])[] = [];
    await h.provider.start({ ...h.sink, update: (specs) => received.push(specs) });
    h.rows.set('a', spec('a')); // equal content, new object, as a database read gives
    h.rows.set('b', spec('b'));
    await h.changed('b');
    expect(received[1]?.[0]).toBe(received[0]?.[0]);
  });
});
