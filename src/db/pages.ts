/**
 * Rows read per query when a whole table is read. The embedded database runs a query on the
 * event loop's thread and resolves it without a macrotask in between, so pages are small and the
 * read yields to the event loop after each one (5,000 nodes in one go blocked it for ~150 ms; a
 * page of 250 takes a few ms).
 */
const PAGE = 250;

/**
 * Every row of a table keyed by id, in id order, a page at a time (`readPage(after, take)` reads
 * the rows after `after`, id ascending), yielding to the event loop between pages.
 */
export async function readInPages<Row extends { id: string }>(
  readPage: (after: string | undefined, take: number) => Promise<Row[]>,
): Promise<Row[]> {
  const all: Row[] = [];
  let after: string | undefined;
  for (;;) {
    const rows = await readPage(after, PAGE);
    all.push(...rows);
    if (rows.length < PAGE) return all;
    after = rows.at(-1)?.id;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
