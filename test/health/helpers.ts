import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Database } from '../../src/db/client.js';
import { parseEnv } from '../../src/env.js';
import { Overflow } from '../../src/lib/bounded-stream.js';
import { createHttpAgents } from '../../src/lib/http-agents.js';
import type { Logger } from '../../src/lib/logger.js';
import { OutboundPolicy } from '../../src/lib/outbound.js';
import { EventBus } from '../../src/modules/events/bus.js';
import type { EventLogEntry } from '../../src/modules/events/types.js';
import { HealthMonitor, type HealthMonitorOptions } from '../../src/modules/health/monitor.js';
import type {
  CheckResult,
  HealthChange,
  HealthRecord,
  HealthSource,
  HealthSubject,
  HealthSubjectKind,
} from '../../src/modules/health/types.js';
import { NodeHealthSource } from '../../src/modules/nodes/health.js';
import { SettingsService } from '../../src/modules/settings/service.js';
import { createTestDatabase } from '../helpers/db.js';
import type { FakeNode } from '../helpers/fake-node.js';
import { dispose } from '../helpers/leftovers.js';

export const ACTOR = { id: 'test', name: 'test' };

export interface Harness {
  monitor: HealthMonitor;
  /** The nodes' source, registered as the nodes module registers it (for manual checks). */
  nodes: NodeHealthSource;
  db: Database;
  events: EventBus;
  settings: SettingsService;
  /** Every transition the monitor streamed, in order. */
  changes: HealthChange[];
  /** Every `health` event the bus published, in order. */
  logged: EventLogEntry[];
  /** Every log line, parsed. */
  lines: { level: number; msg: string; [k: string]: unknown }[];
}

/**
 * A monitor wired as the app wires it (real event bus, real settings, real node agent) over a
 * database of its own, without the HTTP server. Not started unless `start` is set; stopped (then
 * the bus closed) after the test file.
 */
export async function startMonitor(
  opts: { db?: Database; env?: Record<string, string>; timing?: HealthMonitorOptions['timing']; start?: boolean } = {},
): Promise<Harness> {
  const env = parseEnv({ NODE_ENV: 'test', LOG_LEVEL: 'silent', HEALTH_MONITOR: 'off', ...opts.env });
  const db = opts.db ?? (await createTestDatabase());
  const { log, lines } = captureLog();
  const events = new EventBus({ db: db.prisma, log, minStoredSeverity: 'WARN', retryDelayMs: 50 });
  const settings = new SettingsService({ db: db.prisma, events });
  const http = createHttpAgents(OutboundPolicy.fromEnv(env));
  const monitor = new HealthMonitor({ env, db: db.prisma, log, events, settings, timing: opts.timing });
  // As the nodes module registers it.
  const nodes = new NodeHealthSource(db.prisma, http.nodes, env.HEALTH_CHECK_TIMEOUT_MS);
  monitor.register(nodes);
  const harness: Harness = { monitor, nodes, db, events, settings, changes: [], logged: [], lines };
  void collect(monitor.subscribe(), harness.changes);
  void collect(events.subscribe({ source: 'health' }), harness.logged);
  dispose(harness, async (h) => {
    await h.monitor.stop();
    await h.events.close();
    await http.destroy();
  });
  if (opts.start) monitor.start();
  return harness;
}

async function collect<T>(iterator: AsyncIterableIterator<T>, into: unknown[]): Promise<void> {
  for await (const item of iterator) {
    if (!(item instanceof Overflow)) into.push(item);
  }
}

/** A logger whose JSON lines a test can read back. */
export function captureLog(): { log: Logger; lines: Harness['lines'] } {
  const lines: Harness['lines'] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

export { eventually } from '../helpers/eventually.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A promise the test opens when it wants to. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/**
 * Holds the fake node's `/api/ping` answers until the returned gate opens (other paths as usual);
 * `arrived` resolves when the first held ping has reached the node.
 */
export function holdPings(node: FakeNode): { arrived: Promise<void>; release(): void } {
  const held = gate();
  const arrived = gate();
  node.override = (req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/api/ping')) return false;
    arrived.open();
    void held.promise.then(() => {
      res.writeHead(node.ping === 'up' ? 200 : 503, { 'content-type': 'application/json' }).end('{}');
    });
    return true;
  };
  return {
    arrived: arrived.promise,
    release: () => {
      node.override = undefined;
      held.open();
    },
  };
}

/** A subject a test scripts: its check does whatever `behaviour` says. */
export class FakeSubject implements HealthSubject {
  checks = 0;
  constructor(
    readonly id: string,
    public behaviour: (signal: AbortSignal) => Promise<CheckResult>,
    readonly name = `fake ${id}`,
  ) {}
  check(signal: AbortSignal): Promise<CheckResult> {
    this.checks++;
    return this.behaviour(signal);
  }
}

export const healthy = async (): Promise<CheckResult> => ({ status: 'HEALTHY', latencyMs: 1, detail: 'ok' });
export const unhealthy = async (): Promise<CheckResult> => ({ status: 'UNHEALTHY', latencyMs: 1, detail: 'down' });

/** A source of scripted subjects of another kind (a stand-in for proxies or routes). */
export class FakeSource implements HealthSource<FakeSubject> {
  readonly subjects = new Map<string, FakeSubject>();
  readonly persisted: HealthRecord<FakeSubject>[][] = [];
  constructor(readonly kind: HealthSubjectKind = 'PROXY') {}
  add(...subjects: FakeSubject[]): this {
    for (const s of subjects) this.subjects.set(s.id, s);
    return this;
  }
  async list() {
    return [...this.subjects.values()];
  }
  async find(id: string) {
    return this.subjects.get(id) ?? null;
  }
  async persist(records: HealthRecord<FakeSubject>[]) {
    this.persisted.push(records);
    return records.length;
  }
}
