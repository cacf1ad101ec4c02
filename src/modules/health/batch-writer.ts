import type { Logger } from '../../lib/logger.js';
import { type WriteMessage, writeChannel } from './diagnostics.js';
import type { HealthRecord, HealthSource } from './types.js';

export interface BatchWriterOptions {
  log: Logger;
  /** How often pending results are written. */
  flushMs: number;
  /** Records per statement (each source writes one statement per batch). */
  maxBatch: number;
  /** A write failed after writing had worked (or at the first one): once per outage. */
  onOutage(error: unknown, pending: number): void;
}

/**
 * Collects check results and writes them per source in batches, one statement per batch, every
 * `flushMs`. The newest result of a subject replaces an older pending one. A failed write (the
 * database away) is logged and its records stay pending unless a newer one came meanwhile; the
 * next flush tries again. Writes run one at a time, in order, so an older batch never lands
 * after a newer write of the same subject.
 */
export class BatchWriter {
  private pending = new Map<HealthSource, Map<string, HealthRecord>>();
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private failing = false;
  /** What the statement under way writes (stats only). */
  private writing: { source: HealthSource; id: string }[] = [];
  readonly stats = { statements: 0, rows: 0, failures: 0 };

  constructor(private readonly options: BatchWriterOptions) {}

  /** Subjects whose latest result is not stored yet (queued, or in the write under way). */
  get pendingCount(): number {
    const subjects = new Set<string>();
    for (const [source, records] of this.pending) for (const id of records.keys()) subjects.add(`${source.kind}:${id}`);
    for (const record of this.writing) subjects.add(`${record.source.kind}:${record.id}`);
    return subjects.size;
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.flush(), this.options.flushMs);
    this.timer.unref();
  }

  add(source: HealthSource, record: HealthRecord): void {
    if (this.closed) return;
    this.pendingOf(source).set(record.subject.id, record);
  }

  /** Writes what is pending now (after any write already under way). Never rejects. */
  flush(): Promise<void> {
    this.chain = this.chain.then(() => this.writePending());
    return this.chain;
  }

  /**
   * Writes one record at once (a manual check), replacing whatever was pending for the subject.
   * Rejects when the write fails: the caller is waiting for it. Resolves to 1 when the record was
   * stored, 0 when its subject was gone or had moved.
   */
  writeNow(source: HealthSource, record: HealthRecord): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the health monitor has stopped'));
    this.pending.get(source)?.delete(record.subject.id);
    const write = this.chain.then(() => this.write(source, [record]));
    this.chain = write.then(
      () => {},
      () => {},
    );
    return write;
  }

  /** Stops the timer, writes what is pending, and takes nothing more. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    this.closed = true;
    this.pending.clear();
  }

  private async writePending(): Promise<void> {
    for (const [source, records] of this.pending) {
      if (records.size === 0) continue;
      this.pending.set(source, new Map());
      const batch = [...records.values()];
      for (let i = 0; i < batch.length; i += this.options.maxBatch) {
        // A macrotask between statements: the embedded database would otherwise chain them.
        if (i > 0) await new Promise((resolve) => setImmediate(resolve));
        try {
          await this.write(source, batch.slice(i, i + this.options.maxBatch));
        } catch (error) {
          this.keep(source, batch.slice(i), error);
          break;
        }
      }
    }
  }

  private async write(source: HealthSource, records: HealthRecord[]): Promise<number> {
    const started = performance.now();
    this.writing = records.map((r) => ({ source, id: r.subject.id }));
    let stored: number;
    try {
      stored = await source.persist(records);
    } catch (error) {
      this.stats.failures++;
      if (writeChannel.hasSubscribers)
        writeChannel.publish({ kind: source.kind, rows: records.length, ok: false } satisfies WriteMessage);
      throw error;
    } finally {
      this.writing = [];
    }
    this.stats.statements++;
    this.stats.rows += records.length;
    if (writeChannel.hasSubscribers) {
      writeChannel.publish({
        kind: source.kind,
        rows: records.length,
        ok: true,
        ms: performance.now() - started,
      } satisfies WriteMessage);
    }
    if (this.failing) {
      this.failing = false;
      this.options.log.info({ kind: source.kind }, 'health results are being stored again');
    }
    return stored;
  }

  private pendingOf(source: HealthSource): Map<string, HealthRecord> {
    let records = this.pending.get(source);
    if (!records) {
      records = new Map();
      this.pending.set(source, records);
    }
    return records;
  }

  /** Puts a failed batch back, except where a newer result has arrived since. */
  private keep(source: HealthSource, records: HealthRecord[], error: unknown): void {
    const current = this.pendingOf(source);
    for (const record of records) {
      if (!current.has(record.subject.id)) current.set(record.subject.id, record);
    }
    const pending = this.pendingCount;
    this.options.log.error({ err: error, kind: source.kind, pending }, 'storing health results failed; will retry');
    if (!this.failing) {
      this.failing = true;
      this.options.onOutage(error, pending);
    }
  }
}
