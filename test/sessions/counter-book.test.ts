import { describe, expect, it, vi } from 'vitest';
import { hashToken } from '../../src/modules/auth/tokens.js';
import { CounterBook, countersOf } from '../../src/modules/sessions/counter-book.js';
import { Channel, type Counters, Frame } from '../../src/modules/sessions/hub.js';
import { createTestDatabase } from '../helpers/db.js';

/**
 * Counters are written as increments by whichever instance counted them, and read as the stored
 * row plus what is not written yet (issue 22: publisher and operators on different instances).
 */

const events = { dropped: vi.fn(), published: vi.fn() };

async function setUp() {
  const db = await createTestDatabase();
  const row = await db.prisma.session.create({
    data: { clientId: crypto.randomUUID(), streamKeyHash: hashToken('k'.repeat(43)), framesRelayed: 10n },
  });
  const stored = async () => countersOf(await db.prisma.session.findUniqueOrThrow({ where: { id: row.id } }));
  /** A channel opened from the stored counters, as an instance opens one, with its own book. */
  const open = async () => {
    const book = new CounterBook(db.prisma);
    const channel = new Channel(row.id, await stored(), events);
    book.track(channel);
    return { book, channel };
  };
  return { db, id: row.id, stored, open };
}

function publishFrames(channel: Channel, count: number, bytes = 100): void {
  const publisher = { close: vi.fn() };
  expect(channel.claimPublisher(publisher)).toBe('ok');
  for (let i = 0; i < count; i++) channel.publish(publisher, Buffer.alloc(bytes), true);
  channel.releasePublisher(publisher);
}

describe('CounterBook', () => {
  it('two instances writing the same session add up, never overwrite each other', async () => {
    const { stored, open } = await setUp();
    const a = await open();
    const b = await open();
    publishFrames(a.channel, 5);
    b.channel.join({ userId: 'op', isOperator: true, offer: () => null, close: vi.fn() }, 10);
    await Promise.all([a.book.write(a.channel), b.book.write(b.channel)]);
    expect(await stored()).toEqual({
      framesRelayed: 15,
      bytesRelayed: 500,
      operatorConnects: 1,
      operatorDisconnects: 0,
    });
    // Nothing new: nothing written again.
    await a.book.write(a.channel);
    expect((await stored()).framesRelayed).toBe(15);
  });

  it('reads the stored row plus what is not written yet, and never counts a write in flight twice', async () => {
    const { stored, open } = await setUp();
    const { book, channel } = await open();
    publishFrames(channel, 3);
    expect(book.hasUnwritten(channel)).toBe(true);
    const before = await stored();
    expect(book.live(channel, before).framesRelayed).toBe(13);
    const writing = book.write(channel);
    // While the write is in flight, a row may be read before it lands or after: 13 either way.
    const landed = { ...before, framesRelayed: 13, bytesRelayed: 300 };
    expect(book.live(channel, before).framesRelayed).toBe(13);
    expect(book.live(channel, landed).framesRelayed).toBe(13);
    await writing;
    expect(book.live(channel, await stored()).framesRelayed).toBe(13);
    expect(book.hasUnwritten(channel)).toBe(false);
  });

  it('shows the totals the last frame from a publisher on another instance carried', async () => {
    const { open, stored } = await setUp();
    const operators = await open();
    operators.channel.relay(new Frame(operators.channel.sessionId, 42, Date.now(), Buffer.from('x'), false), 4_200);
    expect(operators.book.live(operators.channel, await stored())).toMatchObject({
      framesRelayed: 42,
      bytesRelayed: 4_200,
    });
  });

  it('a publisher taking over counts on from what the previous one wrote elsewhere', async () => {
    const { open, stored } = await setUp();
    const here = await open();
    const elsewhere = await open();
    publishFrames(elsewhere.channel, 7);
    await elsewhere.book.write(elsewhere.channel);
    await here.book.catchUp(here.channel);
    expect(here.channel.counters.framesRelayed).toBe(17);
    publishFrames(here.channel, 1);
    await here.book.write(here.channel);
    const after: Counters = await stored();
    expect(after.framesRelayed).toBe(18);
  });
});
