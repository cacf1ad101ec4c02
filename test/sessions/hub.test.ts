import { describe, expect, it, vi } from 'vitest';
import { Overflow } from '../../src/lib/bounded-stream.js';
import { CloseCode } from '../../src/modules/sessions/close-codes.js';
import { FrameStream } from '../../src/modules/sessions/frame-stream.js';
import { type Backlog, Channel, Frame, type FrameSubscriber } from '../../src/modules/sessions/hub.js';

const zero = { framesRelayed: 0, bytesRelayed: 0, operatorConnects: 0, operatorDisconnects: 0 };

class FakeSubscriber implements FrameSubscriber {
  readonly frames: Frame[] = [];
  closedWith: CloseCode | null = null;
  refuse: Backlog | null = null;
  constructor(
    readonly userId: string,
    readonly isOperator = true,
  ) {}
  offer(frame: Frame): Backlog | null {
    if (this.refuse) return this.refuse;
    this.frames.push(frame);
    return null;
  }
  close(code: CloseCode): void {
    this.closedWith = code;
  }
}

const publisher = { close: vi.fn() };

describe('Channel', () => {
  it('gives every subscriber the same Frame (and Buffer), numbered on from the stored count', () => {
    const channel = new Channel(
      's1',
      { ...zero, framesRelayed: 41, bytesRelayed: 7 },
      { dropped: vi.fn(), published: vi.fn() },
    );
    const a = new FakeSubscriber('a');
    const b = new FakeSubscriber('b', false);
    expect([channel.join(a, 10), channel.join(b, 10), channel.claimPublisher(publisher)]).toEqual(['ok', 'ok', 'ok']);
    const payload = Buffer.from('hi');
    channel.publish(publisher, payload, false);
    channel.publish(publisher, Buffer.from([0xff]), true);
    expect(a.frames.map((f) => [f.seq, f.binary, f.data])).toEqual([
      [42, false, 'hi'],
      [43, true, '/w=='],
    ]);
    expect(b.frames[0]).toBe(a.frames[0]);
    expect(a.frames[0]?.payload).toBe(payload);
    expect(a.frames[1]?.data).toBe(b.frames[1]?.data); // encoded once, shared
    expect(channel.counters).toEqual({
      framesRelayed: 43,
      bytesRelayed: 10,
      operatorConnects: 1,
      operatorDisconnects: 0,
    });
  });

  it("hands its publisher's frames to `published` (for other instances), and relays theirs uncounted", () => {
    const published = vi.fn();
    const channel = new Channel('s1', { ...zero, framesRelayed: 5 }, { dropped: vi.fn(), published });
    const a = new FakeSubscriber('a');
    channel.join(a, 10);
    // A frame from a publisher on another instance: fanned out, not counted here (it was there).
    const remote = new Frame('s1', 9, Date.now(), Buffer.from('far'), false);
    channel.relay(remote, 300);
    expect(a.frames).toEqual([remote]);
    expect(channel.counters.framesRelayed).toBe(5);
    expect(channel.remote).toEqual({ framesRelayed: 9, bytesRelayed: 300 });
    expect(published).not.toHaveBeenCalled();
    // With a publisher here, remote frames are ignored and its own go out.
    channel.claimPublisher(publisher);
    channel.relay(new Frame('s1', 10, Date.now(), Buffer.from('stale'), false), 305);
    const own = channel.publish(publisher, Buffer.from('near'), false);
    expect(a.frames.map((f) => f.data)).toEqual(['far', 'near']);
    expect(published).toHaveBeenCalledExactlyOnceWith(channel, own);
    // Closed: nothing is relayed.
    channel.close(CloseCode.SessionEnded);
    channel.relay(new Frame('s1', 11, Date.now(), Buffer.from('late'), false), 310);
    expect(a.frames).toHaveLength(2);
  });

  it('ignores frames from anyone but the current publisher', () => {
    const channel = new Channel('s1', zero, { dropped: vi.fn(), published: vi.fn() });
    const a = new FakeSubscriber('a');
    channel.join(a, 10);
    const other = { close: vi.fn() };
    channel.claimPublisher(publisher);
    expect(channel.claimPublisher(other)).toBe('taken');
    expect(channel.publish(other, Buffer.from('x'), false)).toBeNull();
    expect(channel.releasePublisher(other)).toBe(false);
    expect(a.frames).toEqual([]);
  });

  it('drops a subscriber that cannot take a frame, without holding up the others', () => {
    const dropped = vi.fn();
    const channel = new Channel('s1', zero, { dropped, published: vi.fn() });
    const slow = new FakeSubscriber('slow');
    const fast = new FakeSubscriber('fast');
    channel.join(slow, 10);
    channel.join(fast, 10);
    channel.claimPublisher(publisher);
    slow.refuse = { bytes: 123, frames: 4 };
    channel.publish(publisher, Buffer.from('1'), false);
    channel.publish(publisher, Buffer.from('2'), false);
    expect(fast.frames.map((f) => f.data)).toEqual(['1', '2']);
    expect(slow.closedWith).toBe(CloseCode.TooSlow);
    expect(dropped).toHaveBeenCalledTimes(1);
    expect(dropped).toHaveBeenCalledWith(channel, slow, { bytes: 123, frames: 4 });
    expect(channel.isConnected('slow')).toBe(false);
    expect(channel.counters.operatorDisconnects).toBe(1);
  });

  it('counts operators (not GraphQL subscribers) against the limit, per socket', () => {
    const channel = new Channel('s1', zero, { dropped: vi.fn(), published: vi.fn() });
    const alice1 = new FakeSubscriber('alice');
    const alice2 = new FakeSubscriber('alice');
    expect(channel.join(alice1, 2)).toBe('ok');
    expect(channel.join(alice2, 2)).toBe('ok');
    expect(channel.join(new FakeSubscriber('bob'), 2)).toBe('full');
    expect(channel.join(new FakeSubscriber('graphql:x', false), 2)).toBe('ok');
    channel.leave(alice1);
    expect(channel.isConnected('alice')).toBe(true);
    channel.leave(alice2);
    expect(channel.isConnected('alice')).toBe(false);
    expect(channel.leave(alice2)).toBe(false); // once only
    expect(channel.counters).toMatchObject({ operatorConnects: 2, operatorDisconnects: 2 });
  });

  it('closes everyone on close() and refuses newcomers after', () => {
    const channel = new Channel('s1', zero, { dropped: vi.fn(), published: vi.fn() });
    const a = new FakeSubscriber('a');
    const pub = { close: vi.fn() };
    channel.join(a, 10);
    channel.claimPublisher(pub);
    expect(channel.close(CloseCode.SessionEnded)).toEqual({ hadPublisher: true });
    expect(pub.close).toHaveBeenCalledWith(CloseCode.SessionEnded);
    expect(a.closedWith).toBe(CloseCode.SessionEnded);
    expect([channel.join(new FakeSubscriber('b'), 10), channel.claimPublisher(publisher)]).toEqual([
      'closed',
      'closed',
    ]);
    expect(channel.isIdle).toBe(true);
  });
});

describe('FrameStream', () => {
  const frame = (seq: number, size: number) => {
    const channel = new Channel('s', { ...zero, framesRelayed: seq - 1 }, { dropped: vi.fn(), published: vi.fn() });
    const sink = new FakeSubscriber('x');
    channel.join(sink, 1);
    channel.claimPublisher(publisher);
    channel.publish(publisher, Buffer.alloc(size), true);
    return sink.frames[0] as Frame;
  };
  const drain = async (stream: FrameStream) => {
    const items: (number | string)[] = [];
    for await (const item of stream) items.push(item instanceof Overflow ? 'overflow' : item.seq);
    return items;
  };

  it('queues up to its byte bound, but takes one larger frame into an empty queue', () => {
    const stream = new FrameStream('u', { maxBytes: 100, maxFrames: 10 }, vi.fn());
    expect(stream.offer(frame(1, 500))).toBeNull(); // alone: accepted whatever its size
    expect(stream.offer(frame(2, 1))).toEqual({ bytes: 500, frames: 1 });
    const other = new FrameStream('u', { maxBytes: 100, maxFrames: 10 }, vi.fn());
    expect([other.offer(frame(1, 60)), other.offer(frame(2, 40))]).toEqual([null, null]);
    expect(other.offer(frame(3, 1))).toEqual({ bytes: 100, frames: 2 });
  });

  it('queues at most maxFrames, however small', () => {
    const stream = new FrameStream('u', { maxBytes: 1_000_000, maxFrames: 3 }, vi.fn());
    for (let i = 1; i <= 3; i++) expect(stream.offer(frame(i, 0))).toBeNull();
    expect(stream.offer(frame(4, 0))).toEqual({ bytes: 0, frames: 3 });
  });

  it('delivers what it holds, then one overflow, then ends, when dropped as too slow', async () => {
    const stream = new FrameStream('u', { maxBytes: 100, maxFrames: 10 }, vi.fn());
    stream.offer(frame(1, 10));
    stream.offer(frame(2, 10));
    stream.close(CloseCode.TooSlow);
    expect(stream.offer(frame(3, 10))).toBeNull(); // ignored after close
    expect(await drain(stream)).toEqual([1, 2, 'overflow']);
  });

  it('completes after what it holds when the session ends; a waiting reader is woken', async () => {
    const stream = new FrameStream('u', { maxBytes: 100, maxFrames: 10 }, vi.fn());
    const reading = drain(stream);
    stream.offer(frame(7, 1));
    await new Promise((r) => setImmediate(r));
    stream.offer(frame(8, 1));
    stream.close(CloseCode.SessionEnded);
    expect(await reading).toEqual([7, 8]);
  });

  it('tells the hub once when the consumer stops early, and not when the hub let go first', async () => {
    const onReturn = vi.fn();
    const stream = new FrameStream('u', { maxBytes: 100, maxFrames: 10 }, onReturn);
    await stream.return();
    await stream.return();
    expect(onReturn).toHaveBeenCalledTimes(1);
    expect(await stream.next()).toEqual({ value: undefined, done: true });

    const ended = vi.fn();
    const closed = new FrameStream('u', { maxBytes: 100, maxFrames: 10 }, ended);
    closed.close(CloseCode.SessionEnded);
    await closed.return();
    expect(ended).not.toHaveBeenCalled();
  });
});
