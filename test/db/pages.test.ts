import { describe, expect, it } from 'vitest';
import { readInPages } from '../../src/db/pages.js';

describe('readInPages', () => {
  it('reads every row in id order, a page after the last id at a time, yielding between pages', async () => {
    const ids = Array.from({ length: 600 }, (_, i) => ({ id: String(i).padStart(4, '0') }));
    const calls: (string | undefined)[] = [];
    // Queued before the read: it runs only if the read gives the event loop a turn between pages.
    let otherWorkRan = false;
    setImmediate(() => {
      otherWorkRan = true;
    });
    const ranBeforePage: boolean[] = [];
    const readPage = async (after: string | undefined, take: number) => {
      calls.push(after);
      ranBeforePage.push(otherWorkRan);
      const from = after === undefined ? 0 : ids.findIndex((r) => r.id === after) + 1;
      return ids.slice(from, from + take);
    };
    const rows = await readInPages(readPage);
    expect(rows).toEqual(ids);
    expect(calls).toEqual([undefined, '0249', '0499']);
    expect(ranBeforePage).toEqual([false, true, true]);
  });

  it('stops after a short first page, and on an empty table', async () => {
    expect(await readInPages(async () => [{ id: 'a' }])).toEqual([{ id: 'a' }]);
    expect(await readInPages(async () => [])).toEqual([]);
  });
});
