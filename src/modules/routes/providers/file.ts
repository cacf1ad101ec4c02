/**
 * The `file` route provider: routes written by hand in a YAML file (ROUTES_FILE), reloaded when the
 * file changes.
 *
 * ```yaml
 * routes:
 *   - alias: grafana            # HTTP route: served for grafana.<any domain> (first host label) ...
 *     host: grafana.example.com # ... and optionally for exactly this host
 *     upstream: http://10.0.0.5:3000
 *     healthPath: /api/health   # optional (default: the upstream's own path)
 *   - alias: rtmp-in            # STREAM route: TCP on listenPort piped to upstream host:port
 *     kind: stream
 *     listenPort: 1935
 *     upstream: 10.0.0.7:1935
 * ```
 *
 * `kind` is `http` (the default) or `stream`; an entry with `listenPort` and no `kind` is a STREAM
 * route. An empty file, `routes:` and `routes: []` mean no routes. A file that is removed takes its
 * routes with it. Two kinds of problem are told apart:
 * - the file as a whole (too large, not YAML, not a mapping with a `routes` list, unknown
 *   top-level keys): RouteSourceError with the line, and the registry keeps the previous routes
 *   — half a file must not silently replace a whole one;
 * - one entry (unknown key, wrong type, listenPort out of range): that entry becomes an INVALID
 *   spec with the reason, excluded on its own; the other entries still load.
 * Values are only type-checked here; what an upstream or host must look like is reconcile.ts's job.
 */
import { type FSWatcher, watch as watchFs } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { isMap, isNode, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import type { Logger } from '../../../lib/logger.js';
import type { RouteSpec } from '../types.js';
import { type RouteProvider, type RouteSink, RouteSourceError } from './provider.js';

/** Larger than any routes file a person writes; guards against pointing ROUTES_FILE at a log. */
export const MAX_ROUTES_FILE_BYTES = 10 * 1024 * 1024;
const DEFAULT_DEBOUNCE_MS = 100;
const TOP_LEVEL_KEYS = ['routes'];

const httpEntry = z.strictObject({
  alias: z.string(),
  kind: z.literal('http').optional(),
  host: z.string().optional(),
  upstream: z.string(),
  healthPath: z.string().optional(),
});
const streamEntry = z.strictObject({
  alias: z.string(),
  kind: z.literal('stream').optional(),
  listenPort: z.int().min(1).max(65535),
  upstream: z.string(),
});

export class FileRouteProvider implements RouteProvider {
  readonly name = 'file';
  private readonly path: string;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private sink: RouteSink | undefined;
  private reading: Promise<void> | undefined;
  private again = false;

  constructor(options: { path: string; log: Logger; debounceMs?: number }) {
    this.path = options.path;
    this.log = options.log;
    this.debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  }

  /** Loads the file into the sink, then follows it. */
  async start(sink: RouteSink): Promise<void> {
    this.sink = sink;
    await this.reload();
    this.watch();
  }

  /** Reads the file again (one read at a time; a change during a read makes one more). */
  private reload(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      try {
        do {
          this.again = false;
          await this.readInto();
        } while (this.again && !this.closed);
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }

  private async readInto(): Promise<void> {
    let specs: RouteSpec[];
    try {
      const text = await this.read();
      if (text === null) {
        if (!this.closed) this.sink?.gone(`routes file ${this.path} does not exist`);
        return;
      }
      specs = this.parse(text);
    } catch (error) {
      if (!this.closed) this.sink?.failed(error);
      return;
    }
    if (!this.closed) this.sink?.update(specs);
  }

  /**
   * Watches the file's directory, not the file: editors (and `kubectl cp`, Ansible…) save by
   * writing a new file and renaming it over the old one, after which a watch on the old file's
   * inode would never fire again.
   */
  private watch(): void {
    if (this.watcher || this.closed) return;
    const name = basename(this.path);
    try {
      this.watcher = watchFs(dirname(this.path), (_event, filename) => {
        // Some platforms do not say which file changed: then it may have been ours.
        if (filename === null || filename === name) this.schedule();
      });
    } catch (error) {
      this.log.warn({ err: error, file: this.path }, 'routes file cannot be watched; changes need a restart');
      return;
    }
    // An error (the directory removed, too many watches) must not crash the process: the routes
    // already loaded keep serving.
    this.watcher.on('error', (error) => {
      this.log.warn({ err: error, file: this.path }, 'routes file watch failed; changes need a restart');
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.reading;
  }

  /** One reload per burst of events: a save is often several (truncate, write, rename). */
  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) void this.reload();
    }, this.debounceMs);
  }

  /**
   * The file's text, null when there is no file; the size is checked on the opened file, so a swap
   * in between cannot dodge it.
   */
  private async read(): Promise<string | null> {
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      handle = await open(this.path, 'r');
      const stat = await handle.stat();
      if (!stat.isFile()) throw new RouteSourceError(`routes file ${this.path} is not a regular file`, this.where());
      if (stat.size > MAX_ROUTES_FILE_BYTES) {
        throw new RouteSourceError(
          `routes file ${this.path} is ${stat.size} bytes, more than the ${MAX_ROUTES_FILE_BYTES} allowed`,
          this.where(),
        );
      }
      return await handle.readFile('utf8');
    } catch (error) {
      if (error instanceof RouteSourceError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      // EISDIR comes from readFile on some platforms, EACCES from open: the file is there but unusable.
      const detail = error instanceof Error ? error.message : String(error);
      throw new RouteSourceError(`routes file ${this.path} cannot be read: ${detail}`, this.where());
    } finally {
      await handle?.close();
    }
  }

  private parse(text: string): RouteSpec[] {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
    const lineOf = (node: Node | null | undefined): number | undefined =>
      node?.range ? lineCounter.linePos(node.range[0]).line : undefined;

    const [firstError] = doc.errors;
    if (firstError) {
      // With prettyErrors the message ends in a code frame; its first line already names the position.
      const headline = (firstError.message.split('\n')[0] ?? firstError.message).replace(/:$/, '');
      throw new RouteSourceError(`routes file ${this.path}: ${headline}`, this.where(firstError.linePos?.[0].line));
    }
    for (const warning of doc.warnings) {
      this.log.warn({ file: this.path, line: warning.linePos?.[0].line }, `routes file: ${warning.message}`);
    }

    const top = doc.contents;
    if (top === null || (isScalar(top) && top.value === null)) return []; // empty, or only comments
    if (!isMap(top)) throw this.shapeError('must be a mapping with a `routes` list', lineOf(top));
    for (const pair of top.items) {
      const key = isScalar(pair.key) ? pair.key.value : pair.key;
      if (typeof key !== 'string' || !TOP_LEVEL_KEYS.includes(key)) {
        const shown = typeof key === 'string' ? `"${key}"` : 'a non-string key';
        const keyNode = isNode(pair.key) ? pair.key : null;
        throw this.shapeError(`has unknown top-level ${shown} (only \`routes\` is allowed)`, lineOf(keyNode));
      }
    }
    if (!top.has('routes')) throw this.shapeError('has no `routes` key', lineOf(top));
    const routes = top.get('routes', true);
    if (routes === undefined || (isScalar(routes) && routes.value === null)) return []; // `routes:` with nothing yet
    if (!isSeq(routes)) throw this.shapeError('`routes` must be a list (entries start with "- ")', lineOf(routes));

    let values: unknown[];
    try {
      // toJS resolves anchors and aliases, with yaml's cap on alias expansion ("billion laughs").
      values = routes.toJS(doc) as unknown[];
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new RouteSourceError(`routes file ${this.path}: ${detail}`, this.where(lineOf(routes)));
    }
    return routes.items.map((item, index) => {
      const line = (isNode(item) ? lineOf(item) : undefined) ?? lineOf(routes) ?? 1;
      return this.toSpec(values[index], line);
    });
  }

  private toSpec(value: unknown, line: number): RouteSpec {
    const origin = `${basename(this.path)}:line ${line}`;
    const isStream =
      isRecord(value) && (value.kind === 'stream' || (value.kind === undefined && 'listenPort' in value));
    const result = (isStream ? streamEntry : httpEntry).safeParse(value);
    if (result.success) {
      // zod leaves absent optional keys out, so an absent `host` stays absent rather than `undefined`.
      const { kind: _kind, ...entry } = result.data;
      if ('listenPort' in entry) return { ...entry, kind: 'STREAM', provider: 'file', origin };
      return { ...entry, kind: 'HTTP', provider: 'file', origin };
    }
    const alias = isRecord(value) && typeof value.alias === 'string' ? value.alias : `line ${line}`;
    const keys = Object.keys((isStream ? streamEntry : httpEntry).shape);
    const reason = result.error.issues.map((issue) => describeIssue(issue, value, keys)).join('; ');
    return { kind: 'INVALID', alias, provider: 'file', origin, reason };
  }

  private shapeError(problem: string, line: number | undefined): RouteSourceError {
    return new RouteSourceError(`routes file ${this.path} ${problem}`, this.where(line));
  }

  private where(line?: number): { file: string; line?: number } {
    return line === undefined ? { file: this.path } : { file: this.path, line };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A zod issue as a person editing the file would want it: the field, what is wrong, what was there. */
function describeIssue(issue: z.core.$ZodIssue, entry: unknown, allowedKeys: readonly string[]): string {
  const field = issue.path.map(String).join('.');
  const got = isRecord(entry) && issue.path.length === 1 ? entry[String(issue.path[0])] : entry;
  if (issue.code === 'unrecognized_keys') {
    const plural = issue.keys.length > 1 ? 'keys' : 'key';
    const kind = allowedKeys.includes('listenPort') ? 'a STREAM route' : 'an HTTP route';
    return `unknown ${plural} ${issue.keys.map((k) => `"${k}"`).join(', ')} (${kind} takes ${allowedKeys.join(', ')})`;
  }
  if (field === '') return `an entry must be a mapping (alias, upstream, …), not ${describeValue(got)}`;
  if (field !== '' && got === undefined && issue.code === 'invalid_type') return `${field} is required`;
  if (field === 'kind') return `kind must be "http" or "stream", not ${describeValue(got)}`;
  if (field === 'listenPort') return `listenPort must be a whole number from 1 to 65535, not ${describeValue(got)}`;
  if (issue.code === 'invalid_type') {
    return got === undefined
      ? `${field} is required`
      : `${field} must be a ${issue.expected}, not ${describeValue(got)}`;
  }
  return `${field}: ${issue.message}`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}
