import type { EventsQueryVariables, StreamGateClient } from '@streamgate/client';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/graphql/context.js';
import { generateToken, hashToken } from '../../src/modules/auth/tokens.js';
import { newerThan } from '../../src/modules/events/cursor.js';
import type { EventLogEntry } from '../../src/modules/events/types.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { rejection, sdkClient } from '../helpers/sdk.js';
import { sample, servicesOf } from './helpers.js';

let app: TestApp;
let sg: StreamGateClient;
let services: Context;
beforeAll(async () => {
  app = await startTestApp(); // EVENT_LOG_MIN_SEVERITY: WARN (the default)
  sg = sdkClient(app);
  services = await servicesOf(app);
});
beforeEach(async () => {
  await app.db.prisma.eventLog.deleteMany();
});

async function page(variables: EventsQueryVariables) {
  const { events } = await sg.events(variables);
  return { ...events, messages: events.edges.map((e) => e.node.message) };
}

/** Follows catch-up pages from `after` until hasNextPage is false; every message, in order. */
async function catchUp(after: string, first: number): Promise<string[]> {
  const seen: string[] = [];
  let cursor = after;
  for (let round = 0; round < 50; round++) {
    const p = await page({ after: cursor, first });
    seen.push(...p.messages.map(String));
    cursor = p.pageInfo.endCursor ?? cursor;
    if (!p.pageInfo.hasNextPage) return seen;
  }
  throw new Error('catch-up did not end');
}

/** Emits the events in order (each one published before the next is emitted). */
async function emitAll(...events: Parameters<Context['events']['record']>[0][]): Promise<EventLogEntry[]> {
  const out: EventLogEntry[] = [];
  for (const event of events) {
    const entry = await services.events.record(event);
    if (entry) out.push(entry);
  }
  return out;
}

describe('events: newest first, filtered, paginated', () => {
  it('pages from the newest entry to the oldest without gaps or repeats', async () => {
    await emitAll(...Array.from({ length: 7 }, (_, i) => sample('WARN', i)));
    const first = await page({ first: 3 });
    expect(first.messages).toEqual(['WARN #6', 'WARN #5', 'WARN #4']);
    expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const second = await page({ first: 3, after: first.pageInfo.endCursor });
    expect(second.messages).toEqual(['WARN #3', 'WARN #2', 'WARN #1']);
    expect(second.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
    const last = await page({ first: 3, after: second.pageInfo.endCursor });
    expect(last.messages).toEqual(['WARN #0']);
    expect(last.pageInfo.hasNextPage).toBe(false);
    expect((await page({})).messages).toHaveLength(7); // default page size 20
  });

  it('returns the entry fields, with the stored seq as id', async () => {
    const [stored] = await emitAll(sample('ERROR', 1, 'health'));
    const { edges } = await page({ first: 1 });
    expect(edges[0]?.node).toEqual({
      id: stored?.id,
      severity: 'ERROR',
      source: 'health',
      type: 'health.write_failed',
      message: 'ERROR #1',
      details: { pending: 1, error: 'test' },
      createdAt: stored?.createdAt.toISOString(),
      cursor: newerThan(BigInt(stored?.id ?? '')),
      actor: null,
    });
  });

  it('filters by any of several severities and by source', async () => {
    await emitAll(
      sample('WARN', 1, 'health'),
      sample('ERROR', 2, 'sessions'),
      sample('WARN', 3, 'sessions'),
      sample('ERROR', 4, 'health'),
    );
    expect((await page({ severity: ['ERROR'] })).messages).toEqual(['ERROR #4', 'ERROR #2']);
    expect((await page({ severity: ['WARN', 'ERROR'] })).messages).toHaveLength(4);
    expect((await page({ source: 'sessions' })).messages).toEqual(['WARN #3', 'ERROR #2']);
    expect((await page({ source: 'health', severity: ['WARN'] })).messages).toEqual(['WARN #1']);
    expect((await page({ source: 'auth' })).messages).toEqual([]);
    // Filters hold across pages too.
    const one = await page({ source: 'health', first: 1 });
    expect((await page({ source: 'health', first: 1, after: one.pageInfo.endCursor })).messages).toEqual(['WARN #1']);
  });

  it('answers bad cursors and filters with BAD_USER_INPUT naming the argument', async () => {
    const bad = async (variables: EventsQueryVariables) => {
      const error = await rejection(sg.events(variables));
      return { codes: [error.code], field: error.field };
    };
    const nodeCursor = Buffer.from('node:01a20000-0000-7000-8000-000000000001').toString('base64url');
    expect(await bad({ after: 'not a cursor' })).toEqual({ codes: ['BAD_USER_INPUT'], field: 'after' });
    expect(await bad({ after: nodeCursor })).toEqual({ codes: ['BAD_USER_INPUT'], field: 'after' });
    expect(await bad({ after: Buffer.from('event:x:1').toString('base64url') })).toMatchObject({ field: 'after' });
    expect(await bad({ after: Buffer.from('event:n:99999999999999999999').toString('base64url') })).toMatchObject({
      codes: ['BAD_USER_INPUT'],
    });
    expect(await bad({ severity: [] })).toEqual({ codes: ['BAD_USER_INPUT'], field: 'severity' });
    expect(await bad({ source: 'nowhere' })).toEqual({ codes: ['BAD_USER_INPUT'], field: 'source' });
    expect(await bad({ first: -1 })).toEqual({ codes: ['BAD_USER_INPUT'], field: 'first' });
    expect(await bad({ first: 101 })).toEqual({ codes: ['BAD_USER_INPUT'], field: 'first' });
  });
});

describe('catch-up by cursor', () => {
  it('from a stored entry: exactly what was stored after it, oldest first, across pages', async () => {
    const [, seen] = await emitAll(sample('WARN', 1), sample('WARN', 2));
    // Missed while away: stored ones come back, unstored (INFO) ones cannot.
    await emitAll(sample('ERROR', 3), sample('INFO', 4), sample('WARN', 5), sample('WARN', 6), sample('ERROR', 7));
    expect(await catchUp(String(cursorOf(seen)), 2)).toEqual(['ERROR #3', 'WARN #5', 'WARN #6', 'ERROR #7']);
    expect(await catchUp(String(cursorOf(seen)), 100)).toEqual(['ERROR #3', 'WARN #5', 'WARN #6', 'ERROR #7']);
  });

  it('from an unstored live entry: what was stored after it, not what was stored before', async () => {
    const [, live] = await emitAll(sample('WARN', 1), sample('INFO', 2));
    expect(live?.id).toMatch(/^live-/);
    await emitAll(sample('WARN', 3), sample('DEBUG', 4), sample('ERROR', 5));
    expect(await catchUp(String(cursorOf(live)), 1)).toEqual(['WARN #3', 'ERROR #5']);
  });

  it('a page after the last entry is empty and keeps no cursor; new entries then show up', async () => {
    const [last] = await emitAll(sample('WARN', 1));
    const empty = await page({ after: cursorOf(last) });
    expect(empty.messages).toEqual([]);
    expect(empty.pageInfo).toMatchObject({ hasNextPage: false, endCursor: null });
    await emitAll(sample('WARN', 2));
    expect((await page({ after: cursorOf(last) })).messages).toEqual(['WARN #2']);
  });

  it('the edges and entries of a catch-up page carry catch-up cursors, with the filters applied', async () => {
    const [start] = await emitAll(sample('WARN', 0, 'health'));
    await emitAll(sample('WARN', 1, 'health'), sample('WARN', 2, 'sessions'), sample('ERROR', 3, 'health'));
    const p = await page({ after: cursorOf(start), source: 'health' });
    expect(p.messages).toEqual(['WARN #1', 'ERROR #3']);
    for (const edge of p.edges) expect(edge?.cursor).toBe(edge?.node.cursor);
  });

  /** The catch-up cursor GraphQL shows on the entry (`EventLogEntry.cursor` resolves it so). */
  function cursorOf(entry: EventLogEntry | undefined): string {
    if (!entry) throw new Error('no entry');
    return newerThan(entry.position);
  }
});

describe('audit trail of node changes', () => {
  it('records create, update and delete with who did it', async () => {
    const { createCacheNode } = await sg.createCacheNode({
      input: { name: 'audit-1', host: '10.0.0.9', apiPort: 9000 },
    });
    const { id } = createCacheNode;
    // A stored token (not ADMIN_TOKEN) makes the change: the log names that token.
    const token = generateToken();
    const row = await app.db.prisma.apiToken.create({
      data: { name: 'ops-laptop', tokenHash: hashToken(token), role: 'admin' },
    });
    await sdkClient(app, { token }).updateCacheNode({ id, input: { host: '10.0.0.10' } });
    await sg.deleteCacheNode({ id });

    const { edges } = await page({ source: 'nodes' });
    expect(edges.map((e) => e.node).reverse()).toEqual([
      expect.objectContaining({
        type: 'node.created',
        severity: 'INFO',
        actor: { id: 'env', name: 'ADMIN_TOKEN' },
        details: { id, kind: 'CACHE', name: 'audit-1', host: '10.0.0.9', apiPort: 9000 },
      }),
      expect.objectContaining({
        type: 'node.updated',
        actor: { id: row.id, name: 'ops-laptop' },
        details: { id, kind: 'CACHE', name: 'audit-1', changes: { host: '10.0.0.10' } },
      }),
      expect.objectContaining({
        type: 'node.deleted',
        actor: { id: 'env', name: 'ADMIN_TOKEN' },
        details: { id, kind: 'CACHE', name: 'audit-1' },
      }),
    ]);
  });

  it('records nothing for a change that failed', async () => {
    await rejection(sg.createCacheNode({ input: { name: 'bad name!', host: '10.0.0.9', apiPort: 9000 } }));
    await rejection(sg.deleteCacheNode({ id: '01a20000-0000-7000-8000-000000000404' }));
    expect((await page({})).messages).toEqual([]);
  });
});
