import { mkdtemp, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/logger.js';
import { FileRouteProvider, MAX_ROUTES_FILE_BYTES } from '../../src/modules/routes/providers/file.js';
import { type RouteSink, RouteSourceError } from '../../src/modules/routes/providers/provider.js';
import { resolveRoutes } from '../../src/modules/routes/reconcile.js';
import type { RouteSpec } from '../../src/modules/routes/types.js';
import { captureLog } from '../events/helpers.js';
import { eventually } from '../helpers/eventually.js';
import { dispose } from '../helpers/leftovers.js';

/**
 * The routes file provider against real files in a temporary directory: what `load` makes of a
 * file's contents, and that `watch` hears saves (in place and by rename) of that file only.
 */

const log = createLogger('silent');
let dir: string;
let n = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamgate-file-provider-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh file per test (the tests share the directory), and a provider over it. */
async function routesFile(text: string | null): Promise<{ path: string; provider: FileRouteProvider }> {
  n += 1;
  const path = join(dir, `routes-${n}.yaml`);
  if (text !== null) await writeFile(path, text);
  const provider = dispose(new FileRouteProvider({ path, log, debounceMs: 20 }), (p) => p.close());
  return { path, provider };
}

const lines = (...l: string[]) => `${l.join('\n')}\n`;

type SinkCall = { update: readonly RouteSpec[] } | { failed: unknown } | { gone: string };

/** A sink that records what the provider tells it. */
function recorder(): { sink: RouteSink; calls: SinkCall[] } {
  const calls: SinkCall[] = [];
  const sink: RouteSink = {
    update: (specs) => calls.push({ update: specs }),
    failed: (error) => calls.push({ failed: error }),
    gone: (reason) => calls.push({ gone: reason }),
  };
  return { sink, calls };
}

/** What `start` hands the sink: the first load. */
async function firstLoad(provider: FileRouteProvider): Promise<SinkCall> {
  const { sink, calls } = recorder();
  await provider.start(sink);
  expect(calls).toHaveLength(1);
  return calls[0] as SinkCall;
}

async function load(provider: FileRouteProvider): Promise<readonly RouteSpec[]> {
  const call = await firstLoad(provider);
  if (!('update' in call)) throw new Error(`expected routes, got ${JSON.stringify(call)}`);
  return call.update;
}

async function loadError(provider: FileRouteProvider): Promise<RouteSourceError> {
  const call = await firstLoad(provider);
  const error = 'failed' in call ? call.failed : null;
  expect(error).toBeInstanceOf(RouteSourceError);
  return error as RouteSourceError;
}

describe('load', () => {
  it('maps HTTP and STREAM entries to specs, each with its file and line', async () => {
    const { provider } = await routesFile(
      lines(
        '# my routes',
        'routes:',
        '  - alias: grafana',
        '    host: grafana.example.com',
        '    upstream: http://10.0.0.5:3000',
        '    healthPath: /api/health',
        '',
        '  - alias: plain',
        '    upstream: http://10.0.0.6',
        '  - alias: rtmp-in',
        '    listenPort: 1935',
        '    upstream: 10.0.0.7:1935',
      ),
    );
    expect(provider.name).toBe('file');
    const specs = await load(provider);
    const file = `routes-${n}.yaml`;
    // toStrictEqual: an absent optional key must stay absent, not become `undefined`.
    expect(specs).toStrictEqual([
      {
        kind: 'HTTP',
        alias: 'grafana',
        provider: 'file',
        origin: `${file}:line 3`,
        upstream: 'http://10.0.0.5:3000',
        host: 'grafana.example.com',
        healthPath: '/api/health',
      },
      { kind: 'HTTP', alias: 'plain', provider: 'file', origin: `${file}:line 8`, upstream: 'http://10.0.0.6' },
      {
        kind: 'STREAM',
        alias: 'rtmp-in',
        provider: 'file',
        origin: `${file}:line 10`,
        listenPort: 1935,
        upstream: '10.0.0.7:1935',
      },
    ]);
  });

  it('makes a bad entry INVALID with a reason naming the field, and still loads the others', async () => {
    const { provider } = await routesFile(
      lines(
        'routes:',
        '  - alias: good',
        '    upstream: http://10.0.0.5',
        '  - alias: typo',
        '    upstrem: http://10.0.0.6',
        '  - alias: 8080',
        '    upstream: http://10.0.0.7',
        '  - alias: big-port',
        '    listenPort: 70000',
        '    upstream: 10.0.0.8:1',
        '  - alias: stream-with-host',
        '    listenPort: 1936',
        '    host: a.example.com',
        '    upstream: 10.0.0.8:1',
        '  - just a string',
        '  - alias: also-good',
        '    listenPort: 1937',
        '    upstream: 10.0.0.9:1937',
      ),
    );
    const specs = await load(provider);
    expect(specs.map((s) => [s.kind, s.alias, s.origin.replace(/^.*:/, '')])).toEqual([
      ['HTTP', 'good', 'line 2'],
      ['INVALID', 'typo', 'line 4'],
      ['INVALID', 'line 6', 'line 6'],
      ['INVALID', 'big-port', 'line 8'],
      ['INVALID', 'stream-with-host', 'line 11'],
      ['INVALID', 'line 15', 'line 15'],
      ['STREAM', 'also-good', 'line 16'],
    ]);
    const reasons = specs.map((s) => (s.kind === 'INVALID' ? s.reason : null));
    expect(reasons[0]).toBeNull();
    expect(reasons[1]).toMatch(/unknown key "upstrem"/);
    expect(reasons[1]).toMatch(/upstream is required/);
    expect(reasons[2]).toBe('alias must be a string, not number 8080');
    expect(reasons[3]).toBe('listenPort must be a whole number from 1 to 65535, not number 70000');
    expect(reasons[4]).toMatch(/unknown key "host" \(a STREAM route takes alias, kind, listenPort, upstream\)/);
    expect(reasons[5]).toMatch(/an entry must be a mapping.*not the string "just a string"/);
    expect(reasons[6]).toBeNull();
  });

  it('takes `kind: http|stream`, infers stream from listenPort, and names a bad kind', async () => {
    const { provider } = await routesFile(
      lines(
        'routes:',
        '  - alias: a',
        '    kind: stream',
        '    listenPort: 1940',
        '    upstream: 10.0.0.1:1940',
        '  - alias: b',
        '    kind: http',
        '    upstream: http://10.0.0.2',
        '  - alias: c',
        '    kind: udp',
        '    upstream: http://10.0.0.3',
        '  - alias: d',
        '    kind: http',
        '    listenPort: 1941',
        '    upstream: 10.0.0.4:1941',
        '  - alias: e',
        '    kind: stream',
        '    upstream: 10.0.0.5:1942',
      ),
    );
    const specs = await load(provider);
    expect(specs.map((s) => s.kind)).toEqual(['STREAM', 'HTTP', 'INVALID', 'INVALID', 'INVALID']);
    expect(specs[0]).not.toHaveProperty('kind', 'stream');
    const reasons = specs.map((s) => (s.kind === 'INVALID' ? s.reason : null));
    expect(reasons[2]).toBe('kind must be "http" or "stream", not the string "udp"');
    expect(reasons[3]).toMatch(/unknown key "listenPort" \(an HTTP route takes/);
    expect(reasons[4]).toBe('listenPort is required');
  });

  it('loads a file of 10,000 routes whole (its speed is in bench/routes.ts)', async () => {
    const entries = Array.from(
      { length: 10_000 },
      (_, i) => `  - alias: app${i}\n    upstream: http://10.0.${i >> 8}.${i & 255}:8080`,
    );
    const { provider } = await routesFile(`routes:\n${entries.join('\n')}\n`);
    const specs = await load(provider);
    expect(specs).toHaveLength(10_000);
    expect(specs.filter((s) => s.kind !== 'HTTP')).toEqual([]);
    const routes = resolveRoutes(new Map([['file', specs]]), { reservedPorts: new Map() });
    expect(routes.filter((r) => r.kind === 'HTTP')).toHaveLength(10_000);
  });

  it('leaves deep upstream checks to reconcile: a bad URL is a spec here, excluded there', async () => {
    const { provider } = await routesFile(lines('routes:', '  - alias: odd', '    upstream: not a url'));
    const specs = await load(provider);
    expect(specs).toMatchObject([{ kind: 'HTTP', upstream: 'not a url' }]);
    const [route] = resolveRoutes(new Map([['file', specs]]), { reservedPorts: new Map() });
    expect(route).toMatchObject({
      kind: 'EXCLUDED',
      alias: 'odd',
      excludedReason: expect.stringMatching(/^upstream:/),
    });
  });

  it('reads an empty file, a comment-only file, `routes:` and `routes: []` as no routes', async () => {
    for (const text of ['', '# nothing yet\n', 'routes:\n', 'routes: []\n']) {
      const { provider } = await routesFile(text);
      expect(await load(provider), JSON.stringify(text)).toEqual([]);
    }
  });

  it('throws RouteSourceError at the line of a YAML syntax error', async () => {
    const { path, provider } = await routesFile(
      lines('routes:', '  - alias: a', '    upstream: http://x', '  - alias: b', '    alias: c'),
    );
    const error = await loadError(provider);
    expect(error.location).toEqual({ file: path, line: 5 });
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/unique/);

    const unclosed = await routesFile(lines('routes:', '  - alias: a', '    upstream: "http://x', '  - alias: b'));
    expect((await loadError(unclosed.provider)).message).toMatch(/quote/);
  });

  it('throws RouteSourceError, with the line, when the file is not shaped like a routes file', async () => {
    const cases: [string, number, RegExp][] = [
      [lines('- alias: a', '  upstream: http://x'), 1, /must be a mapping/],
      [lines('# top', 'alias: a'), 2, /unknown top-level "alias"/],
      [lines('routes: []', 'extra: 1'), 2, /unknown top-level "extra"/],
      [lines('routes:', '  alias: a'), 2, /`routes` must be a list/],
      [lines('routes: http://x'), 1, /`routes` must be a list/],
      [lines('{}'), 1, /no `routes` key/],
      [lines('just text'), 1, /must be a mapping/],
    ];
    for (const [text, line, message] of cases) {
      const { path, provider } = await routesFile(text);
      const error = await loadError(provider);
      expect(error.location, text).toEqual({ file: path, line });
      expect(error.message, text).toMatch(message);
    }
  });

  it('says a missing file is gone (its routes go), naming the path', async () => {
    const { path, provider } = await routesFile(null);
    expect(await firstLoad(provider)).toEqual({ gone: `routes file ${path} does not exist` });
  });

  it('refuses a directory and a file over 10 MiB without reading them', async () => {
    const asDir = dispose(new FileRouteProvider({ path: dir, log }), (p) => p.close());
    expect((await loadError(asDir)).message).toMatch(/not a regular file/);

    const { path, provider } = await routesFile('routes: []\n');
    await truncate(path, MAX_ROUTES_FILE_BYTES + 1); // sparse: no 10 MiB actually written
    const error = await loadError(provider);
    expect(error.message).toMatch(/10485761 bytes, more than the 10485760 allowed/);
    expect(error.location).toEqual({ file: path });
    await truncate(path, MAX_ROUTES_FILE_BYTES); // exactly the limit is allowed (all NUL bytes: YAML says no)
    const again = dispose(new FileRouteProvider({ path, log }), (p) => p.close());
    expect((await loadError(again)).message).not.toMatch(/bytes, more than/);
  });

  it('loads examples/routes.yaml with every route valid', async () => {
    const path = new URL('../../examples/routes.yaml', import.meta.url).pathname;
    const provider = dispose(new FileRouteProvider({ path, log }), (p) => p.close());
    const specs = await load(provider);
    expect(specs.length).toBeGreaterThanOrEqual(2);
    expect(specs.filter((s) => s.kind === 'INVALID')).toEqual([]);
    expect(new Set(specs.map((s) => s.kind))).toEqual(new Set(['HTTP', 'STREAM']));
    const routes = resolveRoutes(new Map([['file', specs]]), { reservedPorts: new Map() });
    expect(routes.filter((r) => r.kind === 'EXCLUDED')).toEqual([]);
    // The example documents the format the provider parses: its header names every key.
    const text = await readFile(path, 'utf8');
    for (const key of ['alias', 'kind', 'upstream', 'host', 'healthPath', 'listenPort']) expect(text).toContain(key);
  });
});

describe('watch', () => {
  /** A started provider over `name` in the shared directory, counting its reloads after the first. */
  async function watched(
    name: string,
  ): Promise<{ provider: FileRouteProvider; calls: () => number; last: () => SinkCall | undefined }> {
    const provider = dispose(new FileRouteProvider({ path: join(dir, name), log, debounceMs: 20 }), (p) => p.close());
    const { sink, calls } = recorder();
    await provider.start(sink);
    return { provider, calls: () => calls.length - 1, last: () => calls.at(-1) };
  }

  it('fires after an in-place write and after an atomic rename-replace', async () => {
    await writeFile(join(dir, 'w1.yaml'), 'routes: []\n');
    const w = await watched('w1.yaml');
    await writeFile(join(dir, 'w1.yaml'), 'routes:\n');
    await eventually(() => expect(w.calls()).toBeGreaterThanOrEqual(1));

    const before = w.calls();
    await writeFile(join(dir, 'w1.yaml.tmp'), 'routes: []\n');
    await rename(join(dir, 'w1.yaml.tmp'), join(dir, 'w1.yaml'));
    await eventually(() => expect(w.calls()).toBeGreaterThan(before));

    // And again: a watch on the replaced file itself would have gone deaf after the rename.
    const after = w.calls();
    await writeFile(join(dir, 'w1.yaml'), 'routes: []\n');
    await eventually(() => expect(w.calls()).toBeGreaterThan(after));
  });

  it('says the file is gone when it is removed, and loads it again when it comes back', async () => {
    await writeFile(join(dir, 'w4.yaml'), lines('routes:', '  - alias: a', '    upstream: http://10.0.0.1'));
    const w = await watched('w4.yaml');
    await rm(join(dir, 'w4.yaml'));
    await eventually(() => expect(w.last()).toEqual({ gone: `routes file ${join(dir, 'w4.yaml')} does not exist` }));
    await writeFile(join(dir, 'w4.yaml'), lines('routes:', '  - alias: b', '    upstream: http://10.0.0.2'));
    await eventually(() => expect(w.last()).toMatchObject({ update: [{ alias: 'b' }] }));
  });

  it('ignores other files in the same directory', async () => {
    await writeFile(join(dir, 'w2.yaml'), 'routes: []\n');
    const mine = await watched('w2.yaml');
    // A second watcher on the neighbour sees the same directory event through the same debounce:
    // once it has fired, `mine` would have fired too if it did not filter by name.
    const neighbour = await watched('w2-neighbour.yaml');
    await writeFile(join(dir, 'w2-neighbour.yaml'), 'routes: []\n');
    await eventually(() => expect(neighbour.calls()).toBeGreaterThanOrEqual(1));
    expect(mine.calls()).toBe(0);
    await writeFile(join(dir, 'w2.yaml'), 'routes:\n');
    await eventually(() => expect(mine.calls()).toBeGreaterThanOrEqual(1));
  });

  it('stops after close', async () => {
    await writeFile(join(dir, 'w3.yaml'), 'routes: []\n');
    const closed = await watched('w3.yaml');
    const open = await watched('w3.yaml');
    await closed.provider.close();
    await writeFile(join(dir, 'w3.yaml'), 'routes:\n');
    await eventually(() => expect(open.calls()).toBeGreaterThanOrEqual(1));
    expect(closed.calls()).toBe(0);
  });

  it('logs a warning instead of throwing when the directory cannot be watched', async () => {
    const { log: captured, lines: logged } = captureLog();
    const provider = new FileRouteProvider({ path: join(dir, 'no-such-dir', 'routes.yaml'), log: captured });
    await provider.start(recorder().sink);
    expect(logged).toContainEqual(
      expect.objectContaining({ level: 40, msg: expect.stringMatching(/cannot be watched/) }),
    );
    await provider.close();
  });
});
