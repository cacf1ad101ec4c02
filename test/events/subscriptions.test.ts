import { beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/graphql/context.js';
import { graphql } from '../generated/gql.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { graphqlWsClient } from '../helpers/graphql-ws.js';
import { dispose } from '../helpers/leftovers.js';
import { readSse } from '../helpers/sse.js';
import { sample, servicesOf, until } from './helpers.js';

const EVENT_LOGGED = `
  subscription EventLogged($minSeverity: Severity, $source: String, $after: String) {
    eventLogged(minSeverity: $minSeverity, source: $source, after: $after) {
      id severity source type message details createdAt cursor actor { id name }
    }
  }
`;
const CatchUp = graphql(`
  query CatchUp($after: String, $first: Int) {
    events(after: $after, first: $first) { edges { cursor node { id message } } pageInfo { hasNextPage endCursor } }
  }
`);

interface Entry {
  id: string;
  severity: string;
  source: string;
  type: string;
  message: string;
  details: unknown;
  createdAt: string;
  cursor: string;
  actor: { id: string; name: string } | null;
}
interface Result {
  data?: { eventLogged?: Entry } | null;
  errors?: { message: string; extensions?: { code?: string; field?: string } }[];
}

/** What one subscription received, and a way to wait for more of it. */
class Received {
  readonly results: Result[] = [];
  completed = false;
  private wake: () => void = () => {};
  add(result: Result): void {
    this.results.push(result);
    this.wake();
  }
  complete(): void {
    this.completed = true;
    this.wake();
  }
  get entries(): Entry[] {
    return this.results.flatMap((r) => (r.data?.eventLogged ? [r.data.eventLogged] : []));
  }
  /** Waits until the stream completed (failing if it does not). */
  ended(): Promise<void> {
    return this.until(Number.POSITIVE_INFINITY);
  }
  /** Waits until `count` results arrived or the stream completed. */
  async until(count: number, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.results.length < count && !this.completed) {
      if (Date.now() > deadline) throw new Error(`got ${this.results.length} of ${count} results`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }
}

type Transport = 'graphql-ws' | 'sse';
interface Live {
  received: Received;
  close(): void;
}

function overWs(app: TestApp, variables: Record<string, unknown>): Live {
  const received = new Received();
  const client = graphqlWsClient(app);
  client.subscribe(
    { query: EVENT_LOGGED, variables },
    {
      next: (value) => received.add(value as Result),
      error: (error) => {
        received.add({ errors: Array.isArray(error) ? error : [{ message: String(error) }] });
        received.complete();
      },
      complete: () => received.complete(),
    },
  );
  return { received, close: () => void client.dispose() };
}

function overSse(app: TestApp, variables: Record<string, unknown>): Live {
  const received = new Received();
  const controller = dispose(new AbortController(), (c) => c.abort());
  const params = new URLSearchParams({ query: EVENT_LOGGED, variables: JSON.stringify(variables) });
  void (async () => {
    try {
      const res = await app.fetch(`/graphql?${params}`, {
        headers: { accept: 'text/event-stream' },
        signal: controller.signal,
      });
      if (!res.body) throw new Error(`no body (${res.status})`);
      for await (const { event, data } of readSse(res.body)) {
        if (event === 'next' && data) received.add(JSON.parse(data) as Result);
        if (event === 'complete') received.complete();
      }
    } catch (error) {
      if (!controller.signal.aborted) received.add({ errors: [{ message: String(error) }] });
    }
    received.complete();
  })();
  return { received, close: () => controller.abort() };
}

let app: TestApp;
let services: Context;
beforeAll(async () => {
  app = await startTestApp();
  services = await servicesOf(app);
});

const open = new Map<TestApp, Set<Live>>();

/**
 * Subscribes and waits until the bus has the subscriber, so that nothing emitted next is missed:
 * the bus then counts exactly the subscriptions of this app still open (closing is asynchronous).
 */
async function subscribe(transport: Transport, variables: Record<string, unknown> = {}, on = app): Promise<Live> {
  const bus = on === app ? services.events : (await servicesOf(on)).events;
  const openHere = open.get(on) ?? new Set<Live>();
  open.set(on, openHere);
  const live = transport === 'sse' ? overSse(on, variables) : overWs(on, variables);
  const tracked: Live = {
    received: live.received,
    close: () => {
      openHere.delete(tracked);
      live.close();
    },
  };
  openHere.add(tracked);
  await until(() => {
    if (live.received.completed) openHere.delete(tracked);
    return bus.subscriberCount === openHere.size;
  });
  return tracked;
}

describe.each(['graphql-ws', 'sse'] as const)('eventLogged over %s', (transport) => {
  it('streams every entry in order with the EventLogEntry shape, stored or not', async () => {
    const { received, close } = await subscribe(transport);
    const info = await services.events.record(sample('INFO', 1, 'sessions'));
    const warn = await services.events.record(sample('WARN', 2, 'health'), { id: 'tok-9', name: 'ops' });
    await received.until(2);
    close();
    expect(received.entries).toEqual([
      {
        id: info?.id,
        severity: 'INFO',
        source: 'sessions',
        type: 'session.frame_too_large',
        message: 'INFO #1',
        details: { sessionId: 's1', limitBytes: 1 },
        createdAt: info?.createdAt.toISOString(),
        cursor: expect.any(String),
        actor: null,
      },
      expect.objectContaining({ id: warn?.id, severity: 'WARN', actor: { id: 'tok-9', name: 'ops' } }),
    ]);
    expect(info?.id).toMatch(/^live-/);
    expect(warn?.id).toMatch(/^\d+$/);
  });

  it('filters by minimum severity and by source', async () => {
    const warnings = await subscribe(transport, { minSeverity: 'WARN' });
    const health = await subscribe(transport, { source: 'health' });
    const both = await subscribe(transport, { minSeverity: 'ERROR', source: 'health' });
    services.events.emit(sample('INFO', 1, 'health'));
    services.events.emit(sample('WARN', 2, 'sessions'));
    services.events.emit(sample('ERROR', 3, 'sessions'));
    services.events.emit(sample('ERROR', 4, 'health'));
    services.events.emit(sample('DEBUG', 5, 'health'));
    await Promise.all([warnings.received.until(3), health.received.until(3), both.received.until(1)]);
    // A marker every filter lets through: once it arrived, nothing else is on its way.
    services.events.emit(sample('ERROR', 6, 'health'));
    await Promise.all([warnings.received.until(4), health.received.until(4), both.received.until(2)]);
    for (const s of [warnings, health, both]) s.close();
    const messages = (s: Live) => s.received.entries.map((e) => e.message);
    expect(messages(warnings)).toEqual(['WARN #2', 'ERROR #3', 'ERROR #4', 'ERROR #6']);
    expect(messages(health)).toEqual(['INFO #1', 'ERROR #4', 'DEBUG #5', 'ERROR #6']);
    expect(messages(both)).toEqual(['ERROR #4', 'ERROR #6']);
  });

  it('answers an unknown source with BAD_USER_INPUT', async () => {
    const { received } = await subscribe(transport, { source: 'nowhere' });
    await received.until(1);
    expect(received.results[0]?.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'source' });
  });

  it('ends a subscriber that falls more than 10,000 entries behind with one SUBSCRIBER_TOO_SLOW error', async () => {
    const slow = await subscribe(transport);
    // One synchronous burst: the bus hands all of it over before the subscriber can take any.
    for (let i = 1; i <= 10_005; i++) services.events.emit(sample('DEBUG', i));
    await slow.received.ended();
    const last = slow.received.results.at(-1);
    expect(last?.errors?.[0]?.extensions?.code).toBe('SUBSCRIBER_TOO_SLOW');
    expect(slow.received.entries.length).toBeLessThan(10_000);
    slow.close();
  });

  it('lets a subscriber that reconnects catch up on exactly what was stored while it was away', async () => {
    const first = await subscribe(transport);
    await services.events.record(sample('WARN', 1));
    await services.events.record(sample('INFO', 2)); // the last one seen is not stored
    await first.received.until(2);
    first.close();
    await until(() => services.events.subscriberCount === (open.get(app)?.size ?? 0));
    const lastSeen = first.received.entries.at(-1);
    expect(lastSeen?.id).toMatch(/^live-/);

    for (let i = 3; i <= 7; i++) await services.events.record(sample(i % 2 ? 'WARN' : 'INFO', i));
    const missed: string[] = [];
    let after = lastSeen?.cursor;
    for (;;) {
      const res = await app.gql(CatchUp, { after, first: 2 });
      const page = res.data?.events;
      missed.push(...(page?.edges ?? []).map((e) => e?.node.message ?? ''));
      after = page?.pageInfo.endCursor ?? after;
      if (!page?.pageInfo.hasNextPage) break;
    }
    expect(missed).toEqual(['WARN #3', 'WARN #5', 'WARN #7']);
  });
});

describe.each(['graphql-ws', 'sse'] as const)('eventLogged(after:) over %s', (transport) => {
  it('replays what was stored after the cursor, then goes live, each entry once', async () => {
    const first = await subscribe(transport, { minSeverity: 'WARN' });
    await services.events.record(sample('WARN', 1));
    await first.received.until(1);
    first.close();
    await until(() => services.events.subscriberCount === (open.get(app)?.size ?? 0));
    const cursor = first.received.entries.at(-1)?.cursor;

    for (let i = 2; i <= 4; i++) await services.events.record(sample('WARN', i));
    services.events.emit(sample('DEBUG', 5)); // below the filter: never delivered
    const resumed = await subscribe(transport, { minSeverity: 'WARN', after: cursor });
    // Stored while the replay may still be reading: delivered once, by the replay or live.
    const racing = services.events.record(sample('ERROR', 6));
    await racing;
    await services.events.record(sample('WARN', 7));
    await resumed.received.until(5);
    // A marker: once it arrived, nothing else is on its way.
    await services.events.record(sample('ERROR', 8));
    await resumed.received.until(6);
    resumed.close();
    // Closing is asynchronous: the next test counts the bus's subscribers.
    await until(() => services.events.subscriberCount === (open.get(app)?.size ?? 0));
    expect(resumed.received.entries.map((e) => e.message)).toEqual([
      'WARN #2',
      'WARN #3',
      'WARN #4',
      'ERROR #6',
      'WARN #7',
      'ERROR #8',
    ]);
  });

  it('refuses an after that is not a catch-up cursor', async () => {
    await services.events.record(sample('WARN', 1));
    const page = await app.gql(CatchUp, { first: 1 });
    const pageCursor = page.data?.events.pageInfo.endCursor;
    expect(pageCursor).toBeTruthy();
    for (const after of ['not-a-cursor', pageCursor]) {
      const { received, close } = await subscribe(transport, { after });
      await received.until(1);
      close();
      expect(received.results[0]?.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    }
  });
});

describe('when the bus closes (shutdown)', () => {
  it('completes the live streams', async () => {
    const own = await startTestApp();
    const ws = await subscribe('graphql-ws', {}, own);
    const sse = await subscribe('sse', {}, own);
    await (await servicesOf(own)).events.close();
    await Promise.all([ws.received.ended(), sse.received.ended()]);
    expect([ws.received.results, sse.received.results]).toEqual([[], []]);
  });
});
