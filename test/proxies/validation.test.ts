import { Agent } from 'undici';
import { describe, expect, it } from 'vitest';
import { httpProbe } from '../../src/modules/proxies/validation/http-probe.js';
import { validateDestination, validationSteps } from '../../src/modules/proxies/validation/pipeline.js';
import { parseDestination } from '../../src/modules/proxies/validation/syntax.js';
import { connectStep } from '../../src/modules/proxies/validation/tcp.js';
import type { Destination, ValidationResult } from '../../src/modules/proxies/validation/types.js';
import { closedPort } from '../helpers/fake-node.js';
import { dispose } from '../helpers/leftovers.js';
import {
  answer,
  hang,
  startBlackHole,
  startHttpTarget,
  startNotHttpTarget,
  startSelfSignedHttpsTarget,
  validateInUnreachableNamespace,
} from './fixtures/targets.js';

// The hint texts, spelled out here rather than imported: they are the contract.
const SYNTAX_HINT = 'Use an absolute http:// or https:// URL such as http://10.0.0.5:8080.';
const DNS_HINT = 'Domain cannot be resolved. Check DNS settings or use an IP address.';
const refusedHint = (port: number) =>
  `Port ${port} is not accepting connections. Check if the service is running and the port is correct.`;
const TIMEOUT_HINT = 'Connection timed out. Possible firewall blocking. Check network/firewall rules.';
const UNREACHABLE_HINT = 'Host is not reachable. Verify the IP address and network connectivity.';
const statusHint = (status: number) => `Service responded with HTTP ${status}. The service may not be healthy.`;

const names = (result: ValidationResult) => result.steps.map((s) => s.name);
const last = (result: ValidationResult) => result.steps.at(-1)!;

function destination(raw: string): Destination {
  const parsed = parseDestination(raw);
  if (!parsed.ok) throw new Error(`test destination does not parse: ${parsed.detail}`);
  return parsed.destination;
}

describe('SYNTAX', () => {
  const TOO_LONG = `http://example.com/${'a'.repeat(2040)}`;
  const refused: [raw: string, detail: string][] = [
    ['not a url at all', 'not an absolute URL (missing http:// or https://)'],
    ['/relative/path', 'not an absolute URL (missing http:// or https://)'],
    ['example.com:8080', 'not an absolute URL (missing http:// or https://)'],
    ['http:example.com', 'not an absolute URL (expected http:// followed by a host)'],
    ['ftp://files.example.com/', 'scheme "ftp" is not supported; use http or https'],
    ['http://127.0.0.1:0/', 'port 0 is out of range (1-65535)'],
    ['http://127.0.0.1:70000/', 'port 70000 is out of range (1-65535)'],
    ['http://127.0.0.1:80a/', 'port "80a" is not a number'],
    ['http://admin@127.0.0.1:8080/', 'credentials in the URL are not allowed'],
    ['http://admin:secret@127.0.0.1:8080/', 'credentials in the URL are not allowed'],
    ['http://', 'host is missing'],
    ['http:///path', 'host is missing'],
    ['https://:8443/', 'host is missing'],
    ['http://exa mple.com/', 'host "exa mple.com" is not a valid host name or IP address'],
    ['http://[::1/', 'host "[::1" is not a valid IPv6 address in brackets'],
    ['', 'destination is empty'],
    ['   ', 'destination is empty'],
    [TOO_LONG, 'destination is 2059 characters long (at most 2048)'],
  ];
  const label = (raw: string) => (raw === TOO_LONG ? `a URL of ${raw.length} characters` : JSON.stringify(raw));

  it.each(refused.map(([raw, detail]) => [label(raw), detail, raw]))(
    '%s is refused: %s',
    async (_label, detail, raw) => {
      expect(parseDestination(raw)).toEqual({ ok: false, detail });
      const result = await validateDestination(raw);
      expect(result).toEqual({
        ok: false,
        steps: [{ name: 'SYNTAX', ok: false, durationMs: expect.any(Number), detail, hint: SYNTAX_HINT }],
      });
    },
  );

  it.each<[string, Destination]>([
    [
      'http://127.0.0.1:8080',
      { url: 'http://127.0.0.1:8080/', scheme: 'http', host: '127.0.0.1', port: 8080, isIp: true },
    ],
    [
      '  HTTP://Example.COM/Path?q=1  ',
      { url: 'http://example.com/Path?q=1', scheme: 'http', host: 'example.com', port: 80, isIp: false },
    ],
    [
      'https://example.com',
      { url: 'https://example.com/', scheme: 'https', host: 'example.com', port: 443, isIp: false },
    ],
    [
      'https://example.com:443/',
      { url: 'https://example.com/', scheme: 'https', host: 'example.com', port: 443, isIp: false },
    ],
    [
      'http://example.com:443/',
      { url: 'http://example.com:443/', scheme: 'http', host: 'example.com', port: 443, isIp: false },
    ],
    ['http://[::1]:8080/', { url: 'http://[::1]:8080/', scheme: 'http', host: '::1', port: 8080, isIp: true }],
    [
      'https://[2001:DB8::1]/',
      { url: 'https://[2001:db8::1]/', scheme: 'https', host: '2001:db8::1', port: 443, isIp: true },
    ],
    [
      'http://10.0.0.5:65535/x',
      { url: 'http://10.0.0.5:65535/x', scheme: 'http', host: '10.0.0.5', port: 65535, isIp: true },
    ],
  ])('%j is accepted', (raw, expected) => {
    expect(parseDestination(raw)).toEqual({ ok: true, destination: expected });
  });

  it('says what the later steps will use', async () => {
    const port = await closedPort();
    const result = await validateDestination(`http://127.0.0.1:${port}`);
    expect(result.steps[0]).toEqual({
      name: 'SYNTAX',
      ok: true,
      durationMs: expect.any(Number),
      detail: `http://127.0.0.1:${port}/ (host 127.0.0.1, port ${port})`,
      hint: null,
    });
  });
});

describe('DNS', () => {
  it('fails for a name under .invalid, with the DNS hint, and stops there', async () => {
    const result = await validateDestination('http://streamgate-validation-test.invalid:8080/');
    expect(result.ok).toBe(false);
    expect(names(result)).toEqual(['SYNTAX', 'DNS']);
    expect(last(result)).toMatchObject({ ok: false, hint: DNS_HINT });
    expect(last(result).detail).toMatch(
      /^cannot resolve streamgate-validation-test\.invalid: (ENOTFOUND|EAI_AGAIN|EAI_FAIL)$/,
    );
  });

  it('resolves localhost and goes on with what it found', async () => {
    const target = await startHttpTarget(answer(200));
    const result = await validateDestination(`http://localhost:${target.port}/`);
    expect(result.steps[1]).toMatchObject({ name: 'DNS', ok: true, hint: null });
    expect(result.steps[1]!.detail).toMatch(/^localhost resolves to .*127\.0\.0\.1/);
    expect(result.ok).toBe(true);
    expect(target.requests).toEqual([{ url: '/', host: `localhost:${target.port}` }]);
  });

  it('passes an IP literal without a lookup', async () => {
    const result = await validateDestination(`http://127.0.0.1:${await closedPort()}/`);
    expect(result.steps[1]).toEqual({
      name: 'DNS',
      ok: true,
      durationMs: expect.any(Number),
      detail: '127.0.0.1 is an IP address; no lookup needed',
      hint: null,
    });
  });
});

describe('TCP', () => {
  it('reports a refused port at once, naming the port', async () => {
    const port = await closedPort();
    const result = await validateDestination(`http://127.0.0.1:${port}/health`);
    expect(result.ok).toBe(false);
    expect(names(result)).toEqual(['SYNTAX', 'DNS', 'TCP']);
    expect(last(result)).toEqual({
      name: 'TCP',
      ok: false,
      durationMs: expect.any(Number),
      detail: `127.0.0.1:${port} refused the connection (ECONNREFUSED)`,
      hint: refusedHint(port),
    });
  });

  it('times out on a connect that is never answered (a black hole)', async () => {
    const { port, child } = await startBlackHole();
    const result = await validateDestination(`http://127.0.0.1:${port}/`, { timeouts: { tcpMs: 300 } });
    expect(names(result)).toEqual(['SYNTAX', 'DNS', 'TCP']);
    expect(last(result)).toMatchObject({
      ok: false,
      detail: `no connection to 127.0.0.1:${port} within 300 ms`,
      hint: TIMEOUT_HINT,
    });
    // Still listening: the timeout came from the swallowed SYN, not from a port that went away.
    expect(child.exitCode).toBeNull();
  });

  it('reports an unreachable host (no route, in a throwaway network namespace)', async () => {
    const result = await validateInUnreachableNamespace('http://203.0.113.5:80/');
    expect(result.ok).toBe(false);
    expect(names(result)).toEqual(['SYNTAX', 'DNS', 'TCP']);
    expect(result.steps[1]!.detail).toBe('203.0.113.5 is an IP address; no lookup needed');
    expect(last(result)).toMatchObject({
      ok: false,
      detail: '203.0.113.5:80 is unreachable (EHOSTUNREACH)',
      hint: UNREACHABLE_HINT,
    });
  });

  it('tries the addresses in order and keeps the first that connects', async () => {
    const target = await startHttpTarget(answer(200));
    const outcome = await connectStep(['::1', '127.0.0.1'], target.port, 5_000);
    expect(outcome).toEqual({
      ok: true,
      value: '127.0.0.1',
      detail: `connected to 127.0.0.1:${target.port} (after [::1]:${target.port} refused the connection (ECONNREFUSED))`,
    });
  });

  it('lists every address that failed, with one hint', async () => {
    const port = await closedPort();
    const outcome = await connectStep(['127.0.0.1', '::1'], port, 5_000);
    expect(outcome).toEqual({
      ok: false,
      detail: `127.0.0.1:${port} refused the connection (ECONNREFUSED); [::1]:${port} refused the connection (ECONNREFUSED)`,
      hint: refusedHint(port),
    });
  });
});

describe('HTTP', () => {
  it('passes a 200 with every step ok, in order', async () => {
    const target = await startHttpTarget(answer(200));
    const result = await validateDestination(`${target.origin}/status`);
    expect(result.ok).toBe(true);
    expect(names(result)).toEqual(['SYNTAX', 'DNS', 'TCP', 'HTTP']);
    for (const step of result.steps) {
      expect(step).toMatchObject({ ok: true, hint: null });
      expect(step.durationMs).toBeGreaterThanOrEqual(0);
      expect(step.durationMs).toBe(Number(step.durationMs.toFixed(2))); // two decimals
    }
    expect(result.steps[2]!.detail).toBe(`connected to 127.0.0.1:${target.port}`);
    expect(last(result).detail).toBe('HTTP 200');
    expect(target.requests).toEqual([{ url: '/status', host: `127.0.0.1:${target.port}` }]);
  });

  it.each([500, 404])('fails on HTTP %i with the status in the hint', async (status) => {
    const target = await startHttpTarget(answer(status));
    const result = await validateDestination(`${target.origin}/`);
    expect(result.ok).toBe(false);
    expect(names(result)).toEqual(['SYNTAX', 'DNS', 'TCP', 'HTTP']);
    expect(last(result)).toMatchObject({ ok: false, detail: `HTTP ${status}`, hint: statusHint(status) });
  });

  it('passes a redirect, reports where it points and does not follow it', async () => {
    const target = await startHttpTarget((req, res) => {
      if (req.url === '/') answer(302, { location: '/login' })(req, res);
      else answer(200)(req, res);
    });
    const result = await validateDestination(`${target.origin}/`);
    expect(result.ok).toBe(true);
    expect(last(result).detail).toBe('HTTP 302, redirects to /login (not followed)');
    expect(target.requests.map((r) => r.url)).toEqual(['/']);
  });

  it('times out when the server accepts but never answers', async () => {
    const target = await startHttpTarget(hang);
    const result = await validateDestination(`${target.origin}/`, { timeouts: { httpMs: 300 } });
    expect(names(result)).toEqual(['SYNTAX', 'DNS', 'TCP', 'HTTP']);
    expect(result.steps[2]!.ok).toBe(true);
    expect(last(result)).toMatchObject({ ok: false, detail: 'no response headers within 300 ms', hint: TIMEOUT_HINT });
    expect(target.requests).toHaveLength(1);
  });

  it('fails with a protocol hint when the port speaks something else', async () => {
    const { port } = await startNotHttpTarget();
    const result = await validateDestination(`http://127.0.0.1:${port}/`);
    expect(names(result)).toEqual(['SYNTAX', 'DNS', 'TCP', 'HTTP']);
    expect(last(result)).toMatchObject({
      ok: false,
      hint: 'The service did not answer with HTTP. Check that this port serves HTTP (or HTTPS for an https:// URL).',
    });
    expect(last(result).detail).toMatch(/^no HTTP answer: /);
  });

  it('verifies TLS certificates, connecting where TCP did while SNI keeps the name', async () => {
    const target = await startSelfSignedHttpsTarget(answer(200));
    const result = await validateDestination(`https://localhost:${target.port}/`);
    expect(result.steps[2]).toMatchObject({ name: 'TCP', ok: true, detail: `connected to 127.0.0.1:${target.port}` });
    expect(last(result)).toMatchObject({
      name: 'HTTP',
      ok: false,
      detail: 'TLS certificate rejected: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)',
      hint: "The service's TLS certificate is not trusted or does not match the host name. Install a certificate from a trusted CA for this name.",
    });
    expect(target.serverNames).toEqual(['localhost']);
    expect(target.requests).toEqual([]);
  });

  it('fails the TLS handshake when an https:// destination serves plain HTTP', async () => {
    const target = await startHttpTarget(answer(200));
    const result = await validateDestination(`https://127.0.0.1:${target.port}/`);
    expect(last(result)).toMatchObject({
      name: 'HTTP',
      ok: false,
      hint: 'The TLS handshake failed. Check that the service serves HTTPS on this port, or use http:// if it does not.',
    });
    expect(last(result).detail).toMatch(/^TLS handshake failed: .*\(ERR_SSL_WRONG_VERSION_NUMBER\)$/);
  });

  it('validates an IPv6 literal destination end to end', async () => {
    const target = await startHttpTarget(answer(204), '::1');
    const result = await validateDestination(`http://[::1]:${target.port}/`);
    expect(result.ok).toBe(true);
    expect(result.steps.map((s) => s.detail)).toEqual([
      `http://[::1]:${target.port}/ (host ::1, port ${target.port})`,
      '::1 is an IP address; no lookup needed',
      `connected to [::1]:${target.port}`,
      'HTTP 204',
    ]);
  });
});

describe('step by step', () => {
  it('yields each step as it completes, before the HTTP answer exists', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const target = await startHttpTarget((req, res) => void released.then(() => answer(200)(req, res)));
    const steps = validationSteps(`${target.origin}/`);

    for (const name of ['SYNTAX', 'DNS', 'TCP']) {
      const next = await steps.next();
      expect(next).toMatchObject({ done: false, value: { name, ok: true } });
    }
    // The generator is lazy: the HTTP request has not even been sent yet.
    expect(target.requests).toEqual([]);

    const http = steps.next();
    await target.nextRequest();
    const pending = Symbol('pending');
    expect(await Promise.race([http, new Promise((resolve) => setImmediate(resolve, pending))])).toBe(pending);
    release();
    expect(await http).toMatchObject({ done: false, value: { name: 'HTTP', ok: true, detail: 'HTTP 200' } });
    expect(await steps.next()).toEqual({ done: true, value: undefined });
  });

  it('ends at the first failure: later steps are never yielded', async () => {
    const port = await closedPort();
    const seen: string[] = [];
    for await (const step of validationSteps(`http://127.0.0.1:${port}/`)) seen.push(`${step.name}:${step.ok}`);
    expect(seen).toEqual(['SYNTAX:true', 'DNS:true', 'TCP:false']);
  });

  it('an abort during the HTTP step ends the generator and the request', async () => {
    const target = await startHttpTarget(hang);
    const controller = new AbortController();
    const steps = validationSteps(`${target.origin}/`, { signal: controller.signal });
    const seen: string[] = [];
    const collecting = (async () => {
      for await (const step of steps) seen.push(step.name);
    })();
    await target.nextRequest();
    controller.abort(new Error('client went away'));
    await collecting;
    expect(seen).toEqual(['SYNTAX', 'DNS', 'TCP']);
    // Both connections (the TCP step's and the HTTP request's) are closed.
    await expect.poll(() => target.closed).toBe(target.connections);
  });

  it('an abort during a hanging connect ends the generator without waiting for the timeout', async () => {
    const { port } = await startBlackHole();
    const controller = new AbortController();
    const steps = validationSteps(`http://127.0.0.1:${port}/`, {
      signal: controller.signal,
      // Far beyond the test's own timeout: only the abort can end this step.
      timeouts: { tcpMs: 600_000 },
    });
    expect((await steps.next()).value).toMatchObject({ name: 'SYNTAX' });
    expect((await steps.next()).value).toMatchObject({ name: 'DNS' });
    const tcp = steps.next();
    controller.abort();
    expect(await tcp).toEqual({ done: true, value: undefined });
  });

  it('an already aborted signal runs nothing', async () => {
    const result = await validateDestination('http://127.0.0.1:1/', { signal: AbortSignal.abort() });
    expect(result).toEqual({ ok: false, steps: [] });
  });
});

describe('httpProbe with a shared agent (health checks)', () => {
  const agent = dispose(new Agent({ keepAliveTimeout: 10_000 }), (a) => a.close());

  it('answers ok, and leaves the shared agent usable', async () => {
    const target = await startHttpTarget(answer(200));
    const dest = destination(`${target.origin}/`);
    for (let i = 0; i < 2; i++) {
      const result = await httpProbe(dest, { timeoutMs: 5_000, dispatcher: agent });
      expect(result).toEqual({ ok: true, status: 200, latencyMs: expect.any(Number), detail: 'HTTP 200', hint: null });
    }
    expect(target.requests).toHaveLength(2);
  });

  it('reports an unhealthy status as a result', async () => {
    const target = await startHttpTarget(answer(503));
    const result = await httpProbe(destination(`${target.origin}/`), { timeoutMs: 5_000, dispatcher: agent });
    expect(result).toEqual({
      ok: false,
      status: 503,
      latencyMs: expect.any(Number),
      detail: 'HTTP 503',
      hint: statusHint(503),
    });
  });

  it('never throws for network failures: refused, unresolvable, timed out', async () => {
    const port = await closedPort();
    await expect(
      httpProbe(destination(`http://127.0.0.1:${port}/`), { timeoutMs: 5_000, dispatcher: agent }),
    ).resolves.toMatchObject({
      ok: false,
      status: null,
      detail: expect.stringMatching(/^connection refused: .*ECONNREFUSED/),
      hint: refusedHint(port),
    });

    const unresolvable = destination('http://streamgate-validation-test.invalid/');
    await expect(httpProbe(unresolvable, { timeoutMs: 5_000, dispatcher: agent })).resolves.toMatchObject({
      ok: false,
      status: null,
      hint: DNS_HINT,
    });

    const target = await startHttpTarget(hang);
    await expect(
      httpProbe(destination(`${target.origin}/`), { timeoutMs: 300, dispatcher: agent }),
    ).resolves.toMatchObject({
      ok: false,
      status: null,
      detail: 'no response headers within 300 ms',
      hint: TIMEOUT_HINT,
    });
  });

  it("treats the caller's timeout as a timeout and any other abort as no verdict", async () => {
    const target = await startHttpTarget(hang);
    const dest = destination(`${target.origin}/`);

    const timer = new AbortController();
    const timedOut = httpProbe(dest, { timeoutMs: 60_000, dispatcher: agent, signal: timer.signal });
    await target.nextRequest();
    timer.abort(new DOMException('no answer within 250 ms', 'TimeoutError'));
    expect(await timedOut).toMatchObject({ ok: false, detail: 'no answer within 250 ms', hint: TIMEOUT_HINT });

    const stopping = new AbortController();
    const stopped = httpProbe(dest, { timeoutMs: 60_000, dispatcher: agent, signal: stopping.signal });
    await target.nextRequest();
    stopping.abort(new Error('monitor stopping'));
    expect(await stopped).toMatchObject({ ok: false, status: null, detail: 'aborted: monitor stopping', hint: null });
  });

  it('connects to pinned addresses while the Host header keeps the name', async () => {
    const target = await startHttpTarget(answer(200));
    const pinned = destination(`http://pinned.streamgate-validation-test.invalid:${target.port}/x`);
    const result = await httpProbe(pinned, { timeoutMs: 5_000, addresses: ['127.0.0.1'] });
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(target.requests).toEqual([{ url: '/x', host: `pinned.streamgate-validation-test.invalid:${target.port}` }]);
  });
});
