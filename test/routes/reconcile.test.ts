import { describe, expect, it } from 'vitest';
import {
  normaliseHost,
  parseHostPort,
  type ResolveOptions,
  resolveRoutes,
} from '../../src/modules/routes/reconcile.js';
import type { ExcludedRoute, ProviderName, Route, RouteSpec } from '../../src/modules/routes/types.js';

const NO_PORTS: ResolveOptions = { reservedPorts: new Map() };

function resolve(specs: RouteSpec[], options: ResolveOptions = NO_PORTS): Route[] {
  const byProvider = new Map<ProviderName, RouteSpec[]>();
  for (const spec of specs) byProvider.set(spec.provider, [...(byProvider.get(spec.provider) ?? []), spec]);
  return resolveRoutes(byProvider, options);
}

function only(specs: RouteSpec[], options?: ResolveOptions): Route {
  const routes = resolve(specs, options);
  expect(routes).toHaveLength(1);
  return routes[0]!;
}

function excluded(route: Route | undefined): ExcludedRoute {
  expect(route?.kind).toBe('EXCLUDED');
  return route as ExcludedRoute;
}

function http(alias: string, upstream: string, extra: Partial<RouteSpec> = {}): RouteSpec {
  return { kind: 'HTTP', alias, upstream, provider: 'file', origin: 'line 1', ...extra } as RouteSpec;
}

function stream(alias: string, listenPort: number, upstream: string, extra: Partial<RouteSpec> = {}): RouteSpec {
  return { kind: 'STREAM', alias, listenPort, upstream, provider: 'file', origin: 'line 1', ...extra } as RouteSpec;
}

describe('resolveRoutes: valid routes', () => {
  it('an HTTP route: lower-cased alias, parsed upstream, base path, health URL', () => {
    const route = only([http('App.', 'http://Backend.LAN:8080/base/')]);
    expect(route).toEqual({
      kind: 'HTTP',
      alias: 'app',
      provider: 'file',
      origin: 'line 1',
      upstreamUrl: 'http://backend.lan:8080/base/',
      ref: null,
      upstream: { protocol: 'http', host: 'backend.lan', port: 8080, basePath: '/base' },
      host: null,
      healthUrl: 'http://backend.lan:8080/base/',
    });
  });

  it('an HTTP route without a port gets the scheme’s; host and healthPath are taken', () => {
    const route = only([http('api', 'https://10.0.0.1', { host: 'API.example.com.', healthPath: '/healthz' })]);
    expect(route).toMatchObject({
      kind: 'HTTP',
      upstream: { protocol: 'https', host: '10.0.0.1', port: 443, basePath: '' },
      host: 'api.example.com',
      healthUrl: 'https://10.0.0.1/healthz',
    });
  });

  it('a STREAM route: host:port and [v6]:port upstreams', () => {
    expect(only([stream('rtmp', 1935, 'Media.LAN:1935')])).toEqual({
      kind: 'STREAM',
      alias: 'rtmp',
      provider: 'file',
      origin: 'line 1',
      ref: null,
      upstreamUrl: 'tcp://media.lan:1935',
      upstream: { host: 'media.lan', port: 1935 },
      listenPort: 1935,
    });
    expect(only([stream('v6', 9000, '[::1]:9001')])).toMatchObject({
      upstream: { host: '::1', port: 9001 },
      upstreamUrl: 'tcp://[::1]:9001',
    });
  });
});

describe('resolveRoutes: precedence and clashes', () => {
  it('a duplicate alias: file beats proxies beats nodes, whatever order they are handed in', () => {
    const specs = [
      http('app', 'http://10.0.0.3:80', { provider: 'nodes', origin: 'node n1' }),
      http('app', 'http://10.0.0.1:80', { provider: 'proxies', origin: 'proxy p1' }),
      http('APP', 'http://10.0.0.2:80', { provider: 'file', origin: 'line 4' }),
    ];
    const routes = resolve(specs);
    expect(routes.map((r) => `${r.provider}:${r.kind}`)).toEqual(['file:HTTP', 'proxies:EXCLUDED', 'nodes:EXCLUDED']);
    for (const loser of routes.slice(1)) {
      expect(excluded(loser).excludedReason).toBe('alias "app" is already taken by HTTP route "app" (file, line 4)');
    }
    // The loser still shows what it asked for.
    expect(excluded(routes[1])).toMatchObject({ intendedKind: 'HTTP', upstreamUrl: 'http://10.0.0.1/' });
  });

  it('proxies beat nodes when the file does not claim the alias', () => {
    const routes = resolve([
      http('cache-a', 'http://10.0.0.3:80', { provider: 'nodes', origin: 'node n1' }),
      http('cache-a', 'http://10.0.0.1:80', { provider: 'proxies', origin: 'proxy p1' }),
    ]);
    expect(routes[0]).toMatchObject({ kind: 'HTTP', provider: 'proxies' });
    expect(excluded(routes[1]).excludedReason).toBe(
      'alias "cache-a" is already taken by HTTP route "cache-a" (proxies, proxy p1)',
    );
  });

  it('file beats nodes when no proxy claims the alias', () => {
    const routes = resolve([
      http('cache-a', 'http://10.0.0.3:80', { provider: 'nodes', origin: 'node n1' }),
      stream('cache-a', 9000, '10.0.0.2:9000', { provider: 'file', origin: 'line 2' }),
    ]);
    expect(routes[0]).toMatchObject({ kind: 'STREAM', provider: 'file' });
    expect(excluded(routes[1]).excludedReason).toBe(
      'alias "cache-a" is already taken by STREAM route "cache-a" (file, line 2)',
    );
  });

  it('a duplicate within one provider: the first wins', () => {
    const routes = resolve([
      http('app', 'http://10.0.0.1:80', { origin: 'line 1' }),
      http('app', 'http://10.0.0.2:80', { origin: 'line 7' }),
    ]);
    expect(routes[0]).toMatchObject({ kind: 'HTTP', origin: 'line 1' });
    expect(excluded(routes[1])).toMatchObject({
      origin: 'line 7',
      excludedReason: 'alias "app" is already taken by HTTP route "app" (file, line 1)',
    });
  });

  it('a host claimed twice, or a host that is another route’s alias, is a clash', () => {
    const routes = resolve([
      http('a', 'http://10.0.0.1:80', { host: 'shared.example.com', origin: 'line 1' }),
      http('b', 'http://10.0.0.2:80', { host: 'SHARED.example.com', origin: 'line 2' }),
      http('shared.example.com', 'http://10.0.0.3:80', { origin: 'line 3' }),
      http('c', 'http://10.0.0.4:80', { host: 'a', origin: 'line 4' }),
    ]);
    expect(routes.map((r) => r.kind)).toEqual(['HTTP', 'EXCLUDED', 'EXCLUDED', 'EXCLUDED']);
    const winner = 'HTTP route "a" (file, line 1)';
    expect(excluded(routes[1])).toMatchObject({
      excludedReason: `host "shared.example.com" is already taken by ${winner}`,
      host: 'shared.example.com',
    });
    expect(excluded(routes[2]).excludedReason).toBe(`alias "shared.example.com" is already taken by ${winner}`);
    expect(excluded(routes[3]).excludedReason).toBe(`host "a" is already taken by ${winner}`);
  });

  it('a host equal to the route’s own alias is no clash', () => {
    expect(only([http('app.example.com', 'http://10.0.0.1:80', { host: 'App.Example.com' })]).kind).toBe('HTTP');
  });

  it('a listen port taken by an earlier stream route is a clash', () => {
    const routes = resolve([
      stream('one', 9000, '10.0.0.1:1', { origin: 'line 1' }),
      stream('two', 9000, '10.0.0.2:2', { origin: 'line 2' }),
    ]);
    expect(routes[0]?.kind).toBe('STREAM');
    expect(excluded(routes[1])).toMatchObject({
      excludedReason: 'listen port 9000 is already taken by STREAM route "one" (file, line 1)',
      listenPort: 9000,
      upstreamUrl: 'tcp://10.0.0.2:2',
      intendedKind: 'STREAM',
    });
  });

  it('StreamGate’s own ports (PORT, PROXY_PORT) are reserved', () => {
    const options = {
      reservedPorts: new Map([
        [4000, 'PORT (the API)'],
        [8080, 'PROXY_PORT (the data plane)'],
      ]),
    };
    const routes = resolve(
      [stream('a', 4000, '10.0.0.1:1'), stream('b', 8080, '10.0.0.1:2'), stream('c', 8081, '10.0.0.1:3')],
      options,
    );
    expect(excluded(routes[0]).excludedReason).toBe('listen port 4000 is already taken by PORT (the API)');
    expect(excluded(routes[1]).excludedReason).toBe('listen port 8080 is already taken by PROXY_PORT (the data plane)');
    expect(routes[2]?.kind).toBe('STREAM');
  });

  it('an excluded route claims nothing: a later route may take its alias and port', () => {
    const routes = resolve([stream('a', 9000, 'nope'), stream('a', 9000, '10.0.0.1:9000')]);
    expect(routes.map((r) => r.kind)).toEqual(['EXCLUDED', 'STREAM']);
  });
});

describe('resolveRoutes: invalid specs', () => {
  it.each([
    ['a scheme other than http(s)', 'ftp://10.0.0.1/', 'upstream: scheme "ftp" is not supported; use http or https'],
    ['no scheme', '10.0.0.1:8080', 'upstream: not an absolute URL (missing http:// or https://)'],
    ['a port out of range', 'http://10.0.0.1:70000', 'upstream: port 70000 is out of range (1-65535)'],
    ['credentials', 'http://u:p@10.0.0.1/', 'upstream: credentials in the URL are not allowed'],
  ])('an HTTP upstream with %s', (_what, upstream, reason) => {
    const route = excluded(only([http('app', upstream)]));
    expect(route.excludedReason).toBe(reason);
    expect(route.intendedKind).toBe('HTTP');
  });

  it('an HTTP upstream with a query string or a fragment (the client’s are forwarded)', () => {
    for (const upstream of ['http://10.0.0.1/?a=1', 'http://10.0.0.1/#top']) {
      const route = excluded(only([http('app', upstream)]));
      expect(route.excludedReason).toMatch(/^upstream: a query string or fragment is not allowed/);
      expect(route.upstreamUrl).toBe(upstream);
    }
  });

  it('a bad host or health path', () => {
    expect(excluded(only([http('app', 'http://10.0.0.1/', { host: 'no spaces.example' })])).excludedReason).toBe(
      'host "no spaces.example" is not a valid host name',
    );
    expect(excluded(only([http('app', 'http://10.0.0.1/', { healthPath: 'healthz' })])).excludedReason).toBe(
      'healthPath "healthz" must start with "/"',
    );
  });

  it.each([
    ['no port', '10.0.0.1', 'upstream: "10.0.0.1" is not host:port'],
    ['a URL', 'tcp://10.0.0.1:1935', 'upstream: "tcp://10.0.0.1:1935" is not host:port'],
    ['port 0', '10.0.0.1:0', 'upstream: port 0 is out of range (1-65535)'],
    ['a bad host', 'bad_host!:1935', 'upstream: "bad_host!" is not a valid host name or IP address'],
    ['brackets around no IPv6', '[example.com]:1935', 'upstream: "example.com" is not an IPv6 address'],
  ])('a STREAM upstream with %s', (_what, upstream, reason) => {
    const route = excluded(only([stream('rtmp', 1935, upstream)]));
    expect(route).toMatchObject({ excludedReason: reason, intendedKind: 'STREAM', listenPort: 1935 });
  });

  it.each([0, 65536, 1.5, Number.NaN])('a listen port of %s', (listenPort) => {
    expect(excluded(only([stream('rtmp', listenPort, '10.0.0.1:1935')])).excludedReason).toBe(
      `listenPort ${listenPort} is out of range (1-65535)`,
    );
  });

  it.each([
    ['', 'alias is empty'],
    ['has space', 'alias "has space" may hold only letters, digits, ".", "_" and "-"'],
    ['slash/y', 'alias "slash/y" may hold only letters, digits, ".", "_" and "-"'],
    ['-dash', 'alias "-dash" may not start with "-" or ".", nor end with "."'],
    ['.dot', 'alias ".dot" may not start with "-" or ".", nor end with "."'],
    ['Trailing.Dot.', null],
    ['under_score-', null],
    ['x'.repeat(254), 'alias is 254 characters long (at most 253)'],
  ])('alias %j', (alias, reason) => {
    const route = only([http(alias, 'http://10.0.0.1/')]);
    if (reason === null) expect(route.kind).toBe('HTTP');
    else expect(excluded(route).excludedReason).toBe(reason);
  });

  it('an INVALID spec (the provider already knew) passes through as EXCLUDED with its reason', () => {
    const route = only([
      { kind: 'INVALID', alias: 'Broken', reason: 'line 3: upstream is required', provider: 'file', origin: 'line 3' },
    ]);
    expect(route).toEqual({
      kind: 'EXCLUDED',
      alias: 'broken',
      provider: 'file',
      origin: 'line 3',
      ref: null,
      upstreamUrl: null,
      intendedKind: null,
      excludedReason: 'line 3: upstream is required',
      listenPort: null,
      host: null,
    });
  });

  it('an INVALID spec claims nothing', () => {
    const routes = resolve([
      { kind: 'INVALID', alias: 'app', reason: 'bad', provider: 'file', origin: 'line 1' },
      http('app', 'http://10.0.0.1/', { provider: 'proxies', origin: 'proxy 1' }),
    ]);
    expect(routes.map((r) => r.kind)).toEqual(['EXCLUDED', 'HTTP']);
  });
});

describe('resolveRoutes: determinism', () => {
  const mixed = (): RouteSpec[] => [
    http('app', 'http://10.0.0.3:80', { provider: 'nodes', origin: 'node n1' }),
    http('app', 'http://10.0.0.1:80', { provider: 'proxies', origin: 'proxy p1' }),
    stream('rtmp', 1935, '10.0.0.4:1935'),
    stream('rtmp2', 1935, '10.0.0.5:1935'),
    http('bad', 'ftp://x/'),
    http('web', 'http://10.0.0.6/', { host: 'www.example.com' }),
  ];

  it('the same input gives the same output', () => {
    expect(resolve(mixed())).toEqual(resolve(mixed()));
    expect(JSON.stringify(resolve(mixed()))).toBe(JSON.stringify(resolve(mixed())));
  });

  it('an unchanged spec object resolves to the same route object (the registry diff is an identity check)', () => {
    const specs = mixed();
    const first = resolve(specs);
    const second = resolve(specs);
    const active = first.filter((r) => r.kind !== 'EXCLUDED');
    for (const route of active) expect(second).toContain(route);
  });
});

describe('helpers', () => {
  it('normaliseHost lower-cases, trims and drops one trailing dot', () => {
    expect(normaliseHost(' Example.COM. ')).toBe('example.com');
    expect(normaliseHost('a.b')).toBe('a.b');
  });

  it('parseHostPort', () => {
    expect(parseHostPort('Host.lan:80')).toEqual({ host: 'host.lan', port: 80 });
    expect(parseHostPort('[2001:db8::1]:443')).toEqual({ host: '2001:db8::1', port: 443 });
    expect(parseHostPort('2001:db8::1:443')).toEqual({ problem: '"2001:db8::1:443" is not host:port' });
  });
});
