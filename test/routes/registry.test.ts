import { describe, expect, it } from 'vitest';
import { Pool } from '../../src/modules/routes/pool.js';
import { resolveRoutes } from '../../src/modules/routes/reconcile.js';
import { RouteRegistry } from '../../src/modules/routes/registry.js';
import type { ProviderName, Route, RouteSpec } from '../../src/modules/routes/types.js';

/** Specs as providers would hand them over, resolved the way RouteService does. */
function resolve(...specs: RouteSpec[]): Route[] {
  const byProvider = new Map<ProviderName, RouteSpec[]>();
  for (const spec of specs) byProvider.set(spec.provider, [...(byProvider.get(spec.provider) ?? []), spec]);
  return resolveRoutes(byProvider, { reservedPorts: new Map() });
}

function http(alias: string, upstream: string, extra: Partial<RouteSpec> = {}): RouteSpec {
  return { kind: 'HTTP', alias, upstream, provider: 'file', origin: `line ${alias}`, ...extra } as RouteSpec;
}

function stream(alias: string, listenPort: number, upstream: string, extra: Partial<RouteSpec> = {}): RouteSpec {
  return {
    kind: 'STREAM',
    alias,
    listenPort,
    upstream,
    provider: 'file',
    origin: `line ${alias}`,
    ...extra,
  } as RouteSpec;
}

function invalid(alias: string, reason: string, extra: Partial<RouteSpec> = {}): RouteSpec {
  return { kind: 'INVALID', alias, reason, provider: 'file', origin: `line ${alias}`, ...extra } as RouteSpec;
}

const aliases = (routes: readonly Route[]) => routes.map((r) => r.alias);

describe('Pool', () => {
  it('get, has, add (which replaces), del, size and clear', () => {
    const pool = new Pool<number>();
    expect(pool.size).toBe(0);
    expect(pool.get('a')).toBeUndefined();
    pool.add('a', 1);
    pool.add('b', 2);
    expect(pool.get('a')).toBe(1);
    expect(pool.has('b')).toBe(true);
    expect(pool.has('c')).toBe(false);
    pool.add('a', 10);
    expect(pool.get('a')).toBe(10);
    expect(pool.size).toBe(2);
    expect(pool.del('a')).toBe(true);
    expect(pool.del('a')).toBe(false);
    expect(pool.get('a')).toBeUndefined();
    expect(pool.size).toBe(1);
    pool.clear();
    expect(pool.size).toBe(0);
    expect([...pool]).toEqual([]);
  });

  it('iterates values in insertion order, and keys', () => {
    const pool = new Pool<string>();
    for (const key of ['c', 'a', 'b']) pool.add(key, key.toUpperCase());
    expect([...pool]).toEqual(['C', 'A', 'B']);
    expect(pool.values()).toEqual(['C', 'A', 'B']);
    expect([...pool.keys()]).toEqual(['c', 'a', 'b']);
  });

  it('an iteration sees the set as it was when it started, however the pool changes meanwhile', () => {
    const pool = new Pool<string>();
    for (const key of ['a', 'b', 'c']) pool.add(key, key);
    const seen: string[] = [];
    for (const item of pool) {
      seen.push(item);
      pool.del('b');
      pool.del('c');
      pool.add(`${item}2`, `${item}2`);
    }
    expect(seen).toEqual(['a', 'b', 'c']);
    expect([...pool]).toEqual(['a', 'a2', 'b2', 'c2']);
  });

  it('a snapshot is frozen, reused while nothing changes and replaced after any change', () => {
    const pool = new Pool<number>();
    pool.add('a', 1);
    const first = pool.values();
    expect(Object.isFrozen(first)).toBe(true);
    expect(pool.values()).toBe(first);
    pool.add('b', 2);
    const second = pool.values();
    expect(second).not.toBe(first);
    expect(first).toEqual([1]);
    expect(second).toEqual([1, 2]);
    pool.del('missing');
    expect(pool.values()).toBe(second); // nothing deleted: nothing changed
    pool.del('a');
    expect(pool.values()).toEqual([2]);
    expect(second).toEqual([1, 2]);
    pool.clear();
    expect(pool.values()).toEqual([]);
  });
});

describe('RouteRegistry lookups', () => {
  function filled() {
    const registry = new RouteRegistry();
    registry.replace(
      resolve(
        http('App', 'http://10.0.0.1:8080'),
        http('media.example.com', 'http://10.0.0.2:80', { provider: 'proxies', origin: 'proxy 1' }),
        http('api', 'http://10.0.0.3:3000', { host: 'API.Example.org.' }),
        stream('rtmp', 1935, '10.0.0.4:1935'),
        invalid('broken', 'line 9: upstream is missing'),
      ),
    );
    return registry;
  }

  it('get finds an active route by its stored alias, HTTP first, then STREAM; never an EXCLUDED one', () => {
    const registry = filled();
    expect(registry.get('app')?.kind).toBe('HTTP');
    expect(registry.get('rtmp')?.kind).toBe('STREAM');
    expect(registry.get('broken')).toBeUndefined();
    expect(registry.get('nope')).toBeUndefined();
    // An HTTP and a STREAM route cannot share an alias (reconcile), so put them in by hand.
    const http2 = registry.get('app');
    registry.stream.add('app', registry.get('rtmp') as never);
    expect(registry.get('app')).toBe(http2);
  });

  it('find takes an alias as people write it (any case, a trailing dot), EXCLUDED routes too', () => {
    const registry = filled();
    expect(registry.find('APP')?.alias).toBe('app');
    expect(registry.find('App.')?.alias).toBe('app');
    expect(registry.find('Broken')?.kind).toBe('EXCLUDED');
    expect(registry.find('nope')).toBeUndefined();
  });

  it('find prefers the active route when an excluded one has the same alias', () => {
    const registry = new RouteRegistry();
    registry.replace(
      resolve(
        http('app', 'http://10.0.0.1:80', { provider: 'file', origin: 'line 3' }),
        http('app', 'http://10.0.0.9:80', { provider: 'proxies', origin: 'proxy 1' }),
      ),
    );
    expect(registry.find('app')).toMatchObject({ kind: 'HTTP', provider: 'file' });
    expect(registry.numAll).toBe(2);
  });

  it('getHttpRouteOrExact: alias first, then the exact host as a key, then a route’s explicit host', () => {
    const registry = filled();
    expect(registry.getHttpRouteOrExact('app', 'app.anything.test')?.alias).toBe('app');
    // A proxy is keyed by its whole domain.
    expect(registry.getHttpRouteOrExact('media', 'media.example.com')?.alias).toBe('media.example.com');
    // `api` serves api.example.org too (normalised: lower case, no trailing dot).
    expect(registry.getHttpRouteOrExact('api', 'api.example.org')?.alias).toBe('api');
    expect(registry.getHttpRouteOrExact('other', 'api.example.org')?.alias).toBe('api');
    expect(registry.getHttpRouteOrExact('nope', 'nope.example.com')).toBeUndefined();
  });

  it('getHttpRouteOrExact: the alias wins over another route’s host', () => {
    const registry = new RouteRegistry();
    registry.replace(
      resolve(http('www', 'http://10.0.0.1:80'), http('site', 'http://10.0.0.2:80', { host: 'www.example.com' })),
    );
    expect(registry.getHttpRouteOrExact('www', 'www.example.com')?.alias).toBe('www');
    expect(registry.getHttpRouteOrExact('x', 'www.example.com')?.alias).toBe('site');
  });

  it('getHttpRouteOrExact never returns a STREAM or EXCLUDED route', () => {
    const registry = filled();
    expect(registry.getHttpRouteOrExact('rtmp', 'rtmp.example.com')).toBeUndefined();
    expect(registry.getHttpRouteOrExact('broken', 'broken.example.com')).toBeUndefined();
  });

  it('iterActive, iterAll, numActive, numAll', () => {
    const registry = filled();
    expect(aliases(registry.iterActive()).sort()).toEqual(['api', 'app', 'media.example.com', 'rtmp']);
    expect(aliases(registry.iterAll()).sort()).toEqual(['api', 'app', 'broken', 'media.example.com', 'rtmp']);
    expect(registry.numActive).toBe(4);
    expect(registry.numAll).toBe(5);
    expect(registry.http.size).toBe(3);
    expect(registry.stream.size).toBe(1);
    expect(registry.excluded.size).toBe(1);
  });

  it('iterActive and iterAll are snapshots: a replace during iteration does not show in them', () => {
    const registry = filled();
    const active = registry.iterActive();
    const all = registry.iterAll();
    const seen: string[] = [];
    for (const route of all) {
      seen.push(route.alias);
      registry.replace([]);
    }
    expect(seen.sort()).toEqual(['api', 'app', 'broken', 'media.example.com', 'rtmp']);
    expect(active).toHaveLength(4);
    expect(registry.iterActive()).toEqual([]);
    expect(registry.iterAll()).toEqual([]);
    expect(registry.numAll).toBe(0);
  });

  it('byProvider groups in provider precedence order and leaves out providers without routes', () => {
    const registry = new RouteRegistry();
    registry.replace(
      resolve(
        http('n1', 'http://10.0.0.1:80', { provider: 'nodes', origin: 'node 1' }),
        http('f1', 'http://10.0.0.2:80'),
        http('p1', 'http://10.0.0.3:80', { provider: 'proxies', origin: 'proxy 1' }),
        invalid('f2', 'bad'),
      ),
    );
    const groups = registry.byProvider();
    expect([...groups.keys()]).toEqual(['file', 'proxies', 'nodes']);
    expect(aliases(groups.get('file') ?? []).sort()).toEqual(['f1', 'f2']);
    expect(aliases(groups.get('nodes') ?? [])).toEqual(['n1']);

    registry.replace(resolve(http('n1', 'http://10.0.0.1:80', { provider: 'nodes', origin: 'node 1' })));
    expect([...registry.byProvider().keys()]).toEqual(['nodes']);
  });
});

describe('RouteRegistry.replace', () => {
  const specs = () => [
    http('a', 'http://10.0.0.1:80'),
    http('b', 'http://10.0.0.2:80', { host: 'b.example.com' }),
    stream('s', 9000, '10.0.0.3:9000'),
  ];

  it('adds everything the first time, and an identical set changes nothing (same objects kept)', () => {
    const registry = new RouteRegistry();
    const first = registry.replace(resolve(...specs()));
    expect(aliases(first.added).sort()).toEqual(['a', 'b', 's']);
    expect(first.removed).toEqual([]);
    const a = registry.get('a');
    const s = registry.get('s');

    const again = resolve(...specs());
    expect(again[0]).not.toBe(a); // fresh objects, equal in content
    expect(registry.replace(again)).toEqual({ added: [], removed: [] });
    expect(registry.get('a')).toBe(a);
    expect(registry.get('s')).toBe(s);
  });

  it('a changed route is removed (its old self) and added (its new self); the others keep identity', () => {
    const registry = new RouteRegistry();
    registry.replace(resolve(...specs()));
    const oldA = registry.get('a');
    const oldB = registry.get('b');
    const [, , s] = specs();
    const changes = registry.replace(
      resolve(http('a', 'http://10.0.0.1:81'), http('b', 'http://10.0.0.2:80', { host: 'b.example.com' }), s!),
    );
    expect(changes.removed).toEqual([oldA]);
    expect(aliases(changes.added)).toEqual(['a']);
    expect(registry.get('a')).toBe(changes.added[0]);
    expect(registry.get('a')).toMatchObject({ upstream: { port: 81 } });
    expect(registry.get('b')).toBe(oldB);
  });

  it('a route that changes pool (HTTP → EXCLUDED, STREAM → HTTP) moves', () => {
    const registry = new RouteRegistry();
    registry.replace(resolve(...specs()));
    registry.replace(resolve(invalid('a', 'now broken'), http('s', 'http://10.0.0.3:9000')));
    expect(registry.find('a')?.kind).toBe('EXCLUDED');
    expect(registry.http.has('a')).toBe(false);
    expect(registry.get('s')?.kind).toBe('HTTP');
    expect(registry.stream.size).toBe(0);
    expect(registry.get('b')).toBeUndefined();
  });

  it('keeps the host index current: a new host matches, the old one and a removed route’s do not', () => {
    const registry = new RouteRegistry();
    registry.replace(resolve(...specs()));
    expect(registry.getHttpRouteOrExact('x', 'b.example.com')?.alias).toBe('b');
    registry.replace(resolve(http('b', 'http://10.0.0.2:80', { host: 'b2.example.com' })));
    expect(registry.getHttpRouteOrExact('x', 'b.example.com')).toBeUndefined();
    expect(registry.getHttpRouteOrExact('x', 'b2.example.com')?.alias).toBe('b');
    // The host passes from one route to another in one replace.
    registry.replace(resolve(http('c', 'http://10.0.0.4:80', { host: 'b2.example.com' })));
    expect(registry.getHttpRouteOrExact('x', 'b2.example.com')?.alias).toBe('c');
    registry.replace([]);
    expect(registry.getHttpRouteOrExact('x', 'b2.example.com')).toBeUndefined();
  });

  it('replace reports only what changed; clear empties every pool', () => {
    const registry = new RouteRegistry();
    expect(aliases(registry.replace(resolve(...specs())).added).sort()).toEqual(['a', 'b', 's']);
    expect(registry.replace(resolve(...specs()))).toEqual({ added: [], removed: [] });
    const changes = registry.replace(resolve(http('a', 'http://10.0.0.1:80')));
    expect(aliases(changes.removed).sort()).toEqual(['b', 's']);
    expect(changes.added).toEqual([]);
    registry.clear();
    expect(registry.numAll).toBe(0);
    expect(registry.getHttpRouteOrExact('x', 'b.example.com')).toBeUndefined();
  });

  it('an excluded route whose alias an active one holds is kept under a key of its own', () => {
    const registry = new RouteRegistry();
    registry.replace(
      resolve(
        http('app', 'http://10.0.0.1:80', { origin: 'line 1' }),
        http('app', 'http://10.0.0.2:80', { provider: 'proxies', origin: 'proxy 1' }),
        http('app', 'http://10.0.0.3:80', { provider: 'nodes', origin: 'node 1' }),
      ),
    );
    expect(registry.http.get('app')?.provider).toBe('file');
    expect([...registry.excluded.keys()]).toEqual(['app#2', 'app#3']);
    expect(registry.excluded.values().map((r) => r.origin)).toEqual(['proxy 1', 'node 1']);
    expect(registry.numAll).toBe(3);
    // Replacing with the same set keeps all three as they are.
    const before = registry.iterAll();
    expect(
      registry.replace(
        resolve(
          http('app', 'http://10.0.0.1:80', { origin: 'line 1' }),
          http('app', 'http://10.0.0.2:80', { provider: 'proxies', origin: 'proxy 1' }),
          http('app', 'http://10.0.0.3:80', { provider: 'nodes', origin: 'node 1' }),
        ),
      ),
    ).toEqual({ added: [], removed: [] });
    expect(registry.iterAll()).toBe(before);
  });

  it('two excluded routes with one alias and no active one: the first has the plain alias', () => {
    const registry = new RouteRegistry();
    registry.replace(resolve(invalid('x', 'first'), invalid('x', 'second')));
    expect([...registry.excluded.keys()]).toEqual(['x', 'x#2']);
    expect(registry.find('x')).toMatchObject({ excludedReason: 'first' });
  });
});
