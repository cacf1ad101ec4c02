import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Context } from '../../src/graphql/context.js';
import type { Logger } from '../../src/lib/logger.js';
import type { AppEvent, Severity } from '../../src/modules/events/types.js';
import type { TestApp } from '../helpers/app.js';

/** The services a running test app's resolvers use (its event bus, settings…), via Yoga's context. */
export async function servicesOf(app: TestApp): Promise<Context> {
  const enveloped = app.app.yoga.getEnveloped({ principal: { id: 'test', name: 'test', role: 'admin' } } as never);
  return (await enveloped.contextFactory()) as unknown as Context;
}

/** A logger whose JSON lines a test can read back. */
export function captureLog(): { log: Logger; lines: { level: number; msg: string; [k: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

type TestSource = 'system' | 'health' | 'sessions';

/** A real member of the event union with the severity, source and number a test wants. */
export function sample(severity: Severity, n: number, source: TestSource = 'system'): AppEvent {
  const message = `${severity} #${n}`;
  switch (source) {
    case 'system':
      return { type: 'events.purged', source, severity, message, details: { deleted: n, olderThan: 'test' } };
    case 'health':
      return { type: 'health.write_failed', source, severity, message, details: { pending: n, error: 'test' } };
    case 'sessions':
      return {
        type: 'session.frame_too_large',
        source,
        severity,
        message,
        details: { sessionId: `s${n}`, limitBytes: n },
      };
  }
}

/** Polls until `check` is true (for state that has no event of its own), failing after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
