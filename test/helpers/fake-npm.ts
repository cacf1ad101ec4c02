import { randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { NpmProxyHost, NpmProxyHostInput } from '../../src/modules/proxies/npm/types.js';
import { dispose } from './leftovers.js';

/**
 * A fake Nginx Proxy Manager on 127.0.0.1: real HTTP, in-memory, following NPM's published API
 * schema (NginxProxyManager/nginx-proxy-manager, backend/schema/) for tokens and proxy hosts:
 *
 * - `POST /api/tokens` `{identity, secret}` → `{token, expires}` (ISO time), 401 on bad credentials,
 *   or the 2FA challenge `{requires_2fa, challenge_token}` when `twoFactor` is on.
 * - Everything else needs `Authorization: Bearer <token>` (issued, unexpired), else 401.
 * - `GET|POST /api/nginx/proxy-hosts`, `GET|PUT|DELETE /api/nginx/proxy-hosts/{id}`; bodies are
 *   checked like NPM's validator does (first problem, ajv-style: `data/forward_port must be <= 65535`),
 *   a domain another host has is `400 "<domain> is already in use"`, a missing id is 404.
 * - Errors have NPM's shape: `{ "error": { "code": 400, "message": "…" } }`.
 * - Writing the nginx config, as NPM does after a create and after an update of an enabled host
 *   (internal/proxy-host.js, internal/nginx.js `configure`), sets `meta.nginx_online`/`nginx_err` on
 *   the stored host. A create answers with the host as it was before that write (NPM re-reads it
 *   first), so only a later read shows the result; an update answers with it.
 *
 * Stricter than NPM in one way: it does not coerce types ("8080" is not a port here).
 */

export interface FakeNpmOptions {
  email?: string;
  password?: string;
  /** Lifetime of the tokens it issues; NPM's default is a day. */
  tokenTtlMs?: number;
  /** Answer correct credentials with a two-factor challenge instead of a token. */
  twoFactor?: boolean;
}

export interface RecordedNpmRequest {
  method: string;
  /** Path without the query. */
  path: string;
  /** Parsed JSON body; undefined when there was none, the raw text when it was not JSON. */
  body: unknown;
  headers: IncomingHttpHeaders;
}

/** Which requests a fault applies to; an absent field matches anything. */
export interface NpmRequestMatch {
  method?: string;
  /** Exact path, or a pattern tested against it. */
  path?: string | RegExp;
}

export interface FakeNpm {
  url: string;
  port: number;
  email: string;
  password: string;
  /** The proxy hosts, by id: tests may read and change them directly (e.g. delete one "behind our back"). */
  hosts: Map<number, NpmProxyHost>;
  /** Every request received, faults included, in order. */
  requests: RecordedNpmRequest[];
  twoFactor: boolean;
  /** The next `times` matching requests get `status` with NPM's error shape (message: the status text). */
  failNext(match: NpmRequestMatch, status: number, message?: string, times?: number): void;
  /** The next `times` matching requests get no answer at all (until down() or close()). */
  hangNext(match: NpmRequestMatch, times?: number): void;
  /** The next `times` matching requests are carried out and answered only after `ms`. */
  delayNext(match: NpmRequestMatch, ms: number, times?: number): void;
  /**
   * The next `times` matching requests are carried out (a host is created, changed, deleted), then
   * the connection is cut instead of answering: the client cannot tell whether they were.
   */
  loseAnswerNext(match: NpmRequestMatch, times?: number): void;
  /**
   * The next nginx config write (a create, or an update of an enabled host) fails the way nginx
   * refusing the config does: the host is stored all the same, with `meta.nginx_online: false` and
   * `meta.nginx_err: message`.
   */
  failNginxNext(message: string): void;
  /** Stops listening and cuts every connection: connecting is refused. */
  down(): Promise<void>;
  /** Listens again on the same port; also drops faults a test set up and did not use. */
  up(): Promise<void>;
  /** Every token issued so far stops working (as after they expire): the next call gets 401. */
  expireTokens(): void;
  /**
   * Seeds a host "someone else" made in NPM's UI (defaults: http to 127.0.0.1:80); throws when
   * NPM would refuse the input (schema, or a domain in use). `created_on` (also its `modified_on`)
   * makes it look old; without it, now.
   */
  addHost(input: SeedHostInput): NpmProxyHost;
  close(): Promise<void>;
}

/**
 * A proxy-host input where only the domains are required, and when it was made: ISO 8601 as this
 * fake sends (NPM on MySQL does too; on SQLite, its default, it sends "YYYY-MM-DD HH:MM:SS").
 */
export type SeedHostInput = Partial<NpmProxyHostInput> &
  Pick<NpmProxyHostInput, 'domain_names'> & { created_on?: string };

interface Fault {
  match: NpmRequestMatch;
  times: number;
  status: number | 'hang' | 'lose' | 'delay';
  message?: string;
  delayMs?: number;
}

export async function startFakeNpm(options: FakeNpmOptions = {}): Promise<FakeNpm> {
  const tokens = new Map<string, number>(); // token → expiry (epoch ms)
  const faults: Fault[] = [];
  /** Messages for the next nginx config writes to fail with, oldest first. */
  const nginxFaults: string[] = [];
  const sockets = new Set<Socket>();
  const tokenTtlMs = options.tokenTtlMs ?? 24 * 60 * 60 * 1000;
  let nextId = 1;
  let nextCertificateId = 1;
  let listening = false;

  const npm = {
    url: '',
    port: 0,
    email: options.email ?? 'admin@example.com',
    password: options.password ?? `fake-npm-${randomBytes(6).toString('hex')}`,
    hosts: new Map<number, NpmProxyHost>(),
    requests: [] as RecordedNpmRequest[],
    twoFactor: options.twoFactor ?? false,
  } as FakeNpm;

  const server = createServer((req, res) => {
    readBody(req).then(
      (raw) => {
        const path = (req.url ?? '/').split('?')[0] ?? '/';
        const method = req.method ?? 'GET';
        const body = parseJson(raw);
        npm.requests.push({ method, path, body: body.ok ? body.value : raw, headers: req.headers });
        const fault = takeFault(method, path);
        if (fault?.status === 'hang') return; // the socket stays open, unanswered
        if (fault?.status === 'lose') lost.add(res);
        else if (fault?.status === 'delay') {
          if (body.ok) setTimeout(() => route(method, path, body.value, req, res), fault.delayMs);
          return;
        } else if (fault) return fail(res, fault.status, fault.message);
        if (!body.ok) return fail(res, 400, `Unexpected token in JSON body: ${body.error}`);
        route(method, path, body.value, req, res);
      },
      () => res.destroy(),
    );
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  function takeFault(method: string, path: string): Fault | null {
    const index = faults.findIndex((f) => matches(f.match, method, path));
    const fault = faults[index];
    if (!fault) return null;
    fault.times -= 1;
    if (fault.times <= 0) faults.splice(index, 1);
    return fault;
  }

  function route(method: string, path: string, body: unknown, req: IncomingMessage, res: ServerResponse) {
    if (path === '/api/tokens' && method === 'POST') return issueToken(body, res);
    if (!path.startsWith('/api/')) return fail(res, 404, 'Not Found');
    const denied = authError(req.headers.authorization);
    if (denied) return fail(res, 401, denied);
    if (path === '/api/nginx/proxy-hosts') {
      if (method === 'GET') return send(res, 200, [...npm.hosts.values()].sort(byDomain));
      if (method === 'POST') return createHost(body, res);
    }
    const byId = /^\/api\/nginx\/proxy-hosts\/([^/]+)$/.exec(path);
    if (byId && ['GET', 'PUT', 'DELETE'].includes(method)) {
      const id = Number(byId[1]);
      if (!Number.isInteger(id) || id < 1) return fail(res, 400, 'data/host_id must be integer');
      const host = npm.hosts.get(id);
      if (!host) return fail(res, 404, `Item Not Found - ${id}`);
      if (method === 'GET') return send(res, 200, expanded(host));
      if (method === 'PUT') return updateHost(host, body, res);
      npm.hosts.delete(id);
      return send(res, 200, true);
    }
    fail(res, 404, 'Not Found');
  }

  function issueToken(body: unknown, res: ServerResponse) {
    const problem = validate(body, TOKEN_FIELDS, ['identity', 'secret']);
    if (problem) return fail(res, 400, problem);
    const { identity, secret } = body as { identity: string; secret: string };
    if (identity.toLowerCase() !== npm.email.toLowerCase() || secret !== npm.password) {
      return fail(res, 401, 'Invalid email or password');
    }
    if (npm.twoFactor) return send(res, 200, { requires_2fa: true, challenge_token: randomBytes(24).toString('hex') });
    const token = randomBytes(24).toString('base64url');
    const expires = Date.now() + tokenTtlMs;
    tokens.set(token, expires);
    send(res, 200, { token, expires: new Date(expires).toISOString() });
  }

  function authError(header: string | undefined): string | null {
    const token = /^Bearer (\S+)$/.exec(header ?? '')?.[1];
    if (!token) return 'No token provided';
    const expires = tokens.get(token);
    if (expires === undefined) return 'Invalid token';
    return expires > Date.now() ? null : 'Token has expired';
  }

  /**
   * Creates a host from a body NPM accepted; the problem (NPM's words) when it would not. `host` is
   * the answer (as before the config write), while the stored host has the write's outcome. A seed
   * (addHost) is stored as written fine: failNginxNext is for the next write through the API.
   */
  function insert(body: unknown, seed?: { createdOn?: string }): { host: NpmProxyHost } | { problem: string } {
    const problem = validate(body, HOST_FIELDS, ['domain_names', 'forward_scheme', 'forward_host', 'forward_port']);
    if (problem) return { problem };
    const input = body as NpmProxyHostInput;
    const taken = takenDomain(input.domain_names, null);
    if (taken) return { problem: `${taken} is already in use` };
    const now = seed?.createdOn ?? new Date().toISOString();
    const host = {
      id: nextId++,
      created_on: now,
      modified_on: now,
      owner_user_id: 1,
      domain_names: input.domain_names,
      forward_scheme: input.forward_scheme,
      forward_host: input.forward_host,
      forward_port: input.forward_port,
      access_list_id: input.access_list_id ?? 0,
      certificate_id: certificateId(input.certificate_id ?? 0),
      ssl_forced: input.ssl_forced ?? false,
      caching_enabled: input.caching_enabled ?? false,
      block_exploits: input.block_exploits ?? false,
      advanced_config: input.advanced_config ?? '',
      meta: { ...input.meta },
      allow_websocket_upgrade: input.allow_websocket_upgrade ?? false,
      http2_support: input.http2_support ?? false,
      enabled: input.enabled ?? true,
      locations: input.locations ?? [],
      hsts_enabled: input.hsts_enabled ?? false,
      hsts_subdomains: input.hsts_subdomains ?? false,
      // Required by newer schema versions only: sent, so clients are seen to ignore what they do not know.
      ssl_key_type: 'ecdsa',
      default_server: false,
    } satisfies NpmProxyHost & Record<string, unknown>;
    const meta = seed ? { ...host.meta, nginx_online: true, nginx_err: null } : configured(host.meta);
    npm.hosts.set(host.id, { ...host, meta });
    return { host };
  }

  /** `meta` after writing a host's nginx config: NPM adds whether nginx took it (nginx.js `configure`). */
  function configured(meta: Record<string, unknown>): Record<string, unknown> {
    const refusal = nginxFaults.shift();
    if (refusal === undefined) return { ...meta, nginx_online: true, nginx_err: null };
    return { ...meta, nginx_online: false, nginx_err: refusal };
  }

  function createHost(body: unknown, res: ServerResponse) {
    const result = insert(body);
    if ('problem' in result) return fail(res, 400, result.problem);
    send(res, 201, expanded(result.host));
  }

  function updateHost(host: NpmProxyHost, body: unknown, res: ServerResponse) {
    const problem = validate(body, HOST_FIELDS, [], 1);
    if (problem) return fail(res, 400, problem);
    const input = body as Partial<NpmProxyHostInput>;
    const taken = input.domain_names && takenDomain(input.domain_names, host.id);
    if (taken) return fail(res, 400, `${taken} is already in use`);
    const { certificate_id, meta, ...rest } = input;
    // Fields not sent keep their value; a `meta` sent replaces the stored one.
    const patched: NpmProxyHost = {
      ...host,
      ...rest,
      ...(certificate_id === undefined ? {} : { certificate_id: certificateId(certificate_id) }),
      meta: meta ?? host.meta,
      modified_on: new Date().toISOString(),
    };
    // NPM writes no config for a disabled host, so its meta stays as patched.
    const updated = patched.enabled ? { ...patched, meta: configured(patched.meta) } : patched;
    npm.hosts.set(host.id, updated);
    send(res, 200, expanded(updated));
  }

  /** NPM compares domains case-insensitively (internal/host.js). */
  function takenDomain(domains: string[], ownId: number | null): string | null {
    for (const domain of domains) {
      for (const host of npm.hosts.values()) {
        if (host.id !== ownId && host.domain_names.some((d) => d.toLowerCase() === domain.toLowerCase())) {
          return domain;
        }
      }
    }
    return null;
  }

  /** `"new"` has NPM request a Let's Encrypt certificate; here it just gets the next id. */
  function certificateId(value: number | 'new'): number {
    return value === 'new' ? nextCertificateId++ : value;
  }

  /** Single-host answers come with `certificate` expanded (null when there is none), as NPM's do. */
  function expanded(host: NpmProxyHost) {
    const certificate =
      host.certificate_id === 0
        ? null
        : {
            id: host.certificate_id,
            created_on: host.created_on,
            modified_on: host.modified_on,
            owner_user_id: 1,
            provider: 'other',
            nice_name: `certificate #${host.certificate_id}`,
            domain_names: host.domain_names,
            expires_on: new Date(Date.parse(host.created_on) + 90 * 86_400_000).toISOString(),
            meta: {},
          };
    return { ...host, certificate };
  }

  function matches(match: NpmRequestMatch, method: string, path: string): boolean {
    if (match.method && match.method.toUpperCase() !== method) return false;
    if (match.path === undefined) return true;
    return typeof match.path === 'string' ? match.path === path : match.path.test(path);
  }

  async function listen(port: number) {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    listening = true;
  }

  async function stop() {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  }

  await listen(0);
  npm.port = (server.address() as AddressInfo).port;
  npm.url = `http://127.0.0.1:${npm.port}`;
  npm.failNext = (match, status, message, times = 1) => {
    faults.push({ match, status, times, ...(message === undefined ? {} : { message }) });
  };
  npm.hangNext = (match, times = 1) => {
    faults.push({ match, status: 'hang', times });
  };
  npm.delayNext = (match, ms, times = 1) => {
    faults.push({ match, status: 'delay', delayMs: ms, times });
  };
  npm.loseAnswerNext = (match, times = 1) => {
    faults.push({ match, status: 'lose', times });
  };
  npm.failNginxNext = (message) => {
    nginxFaults.push(message);
  };
  npm.down = stop;
  npm.up = async () => {
    faults.length = 0;
    nginxFaults.length = 0;
    if (!listening) await listen(npm.port);
  };
  npm.expireTokens = () => {
    for (const token of tokens.keys()) tokens.set(token, 0);
  };
  npm.addHost = ({ created_on, ...input }) => {
    const defaults = { forward_scheme: 'http', forward_host: '127.0.0.1', forward_port: 80 } as const;
    const result = insert(structuredClone({ ...defaults, ...input }), { createdOn: created_on });
    if ('problem' in result) throw new Error(`fake NPM refuses this host: ${result.problem}`);
    // The host as stored (config written), as NPM's UI would show it.
    return npm.hosts.get(result.host.id) as NpmProxyHost;
  };
  npm.close = stop;
  return dispose(npm, (n) => n.close());
}

/** Answers whose request was carried out but which are cut off (loseAnswerNext). */
const lost = new WeakSet<ServerResponse>();

function send(res: ServerResponse, status: number, body: unknown) {
  if (lost.has(res)) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

/** NPM's error shape (components/error.json). */
function fail(res: ServerResponse, status: number, message?: string) {
  send(res, status, { error: { code: status, message: message ?? STATUS_CODES[status] ?? 'Error' } });
}

function byDomain(a: NpmProxyHost, b: NpmProxyHost): number {
  return (a.domain_names[0] ?? '').localeCompare(b.domain_names[0] ?? '');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(raw: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (raw === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

// ---- Request validation: the parts of NPM's JSON schemas that apply, with ajv's wording. ----

/** A problem with `value` at `at` ("data/forward_port"), or null when it is fine. */
type Check = (value: unknown, at: string) => string | null;

const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const boolean: Check = (v, at) => (typeof v === 'boolean' ? null : `${at} must be boolean`);
const object: Check = (v, at) => (isObject(v) ? null : `${at} must be object`);

function string(minLength = 0, maxLength = Number.POSITIVE_INFINITY): Check {
  return (v, at) => {
    if (typeof v !== 'string') return `${at} must be string`;
    if (v.length < minLength) return `${at} must NOT have fewer than ${minLength} characters`;
    if (v.length > maxLength) return `${at} must NOT have more than ${maxLength} characters`;
    return null;
  };
}

function integer(minimum: number, maximum = Number.POSITIVE_INFINITY): Check {
  return (v, at) => {
    if (!isInteger(v)) return `${at} must be integer`;
    if (v < minimum) return `${at} must be >= ${minimum}`;
    if (v > maximum) return `${at} must be <= ${maximum}`;
    return null;
  };
}

function oneOf(...allowed: string[]): Check {
  return (v, at) =>
    typeof v === 'string' && allowed.includes(v) ? null : `${at} must be equal to one of the allowed values`;
}

/** common.json#/properties/domain_names */
const DOMAIN_PATTERN = /^[^&| @!#%^();:/\\}{=+?<>,~`'"]+$/;
const domainNames: Check = (v, at) => {
  if (!Array.isArray(v)) return `${at} must be array`;
  if (v.length < 1) return `${at} must NOT have fewer than 1 items`;
  if (v.length > 100) return `${at} must NOT have more than 100 items`;
  for (const [i, name] of v.entries()) {
    if (typeof name !== 'string') return `${at}/${i} must be string`;
    if (!DOMAIN_PATTERN.test(name)) return `${at}/${i} must match pattern "${DOMAIN_PATTERN.source}"`;
    const j = v.indexOf(name);
    if (j !== i) return `${at} must NOT have duplicate items (items ## ${i} and ${j} are identical)`;
  }
  return null;
};

/** common.json#/properties/certificate_id: an id (0 = none) or "new". */
const certificate: Check = (v, at) =>
  (isInteger(v) && v >= 0) || v === 'new' ? null : `${at} must match a schema in anyOf`;

const LOCATION_FIELDS: Record<string, Check> = {
  id: (v, at) => (v === null || isInteger(v) ? null : `${at} must be integer,null`),
  path: string(1),
  forward_scheme: oneOf('http', 'https'),
  forward_host: string(1, 255),
  forward_port: integer(1, 65535),
  forward_path: string(),
  advanced_config: string(),
};

const locations: Check = (v, at) => {
  if (!Array.isArray(v)) return `${at} must be array`;
  for (const [i, item] of v.entries()) {
    const problem = validate(
      item,
      LOCATION_FIELDS,
      ['forward_scheme', 'forward_host', 'forward_port', 'path'],
      0,
      `${at}/${i}`,
    );
    if (problem) return problem;
  }
  return null;
};

/** The proxy-host properties POST and PUT accept (paths/nginx/proxy-hosts/post.json, hostID/put.json). */
const HOST_FIELDS: Record<string, Check> = {
  domain_names: domainNames,
  forward_scheme: oneOf('http', 'https'),
  forward_host: string(1, 255),
  forward_port: integer(1, 65535),
  certificate_id: certificate,
  ssl_forced: boolean,
  hsts_enabled: boolean,
  hsts_subdomains: boolean,
  http2_support: boolean,
  block_exploits: boolean,
  caching_enabled: boolean,
  allow_websocket_upgrade: boolean,
  access_list_id: integer(0),
  advanced_config: string(),
  enabled: boolean,
  meta: object,
  locations,
};

/** paths/tokens/post.json */
const TOKEN_FIELDS: Record<string, Check> = {
  identity: string(1),
  secret: string(1),
  scope: oneOf('user'),
};

/** An object with only `fields`, `required` present and at least `minProperties` keys: NPM's first complaint, or null. */
function validate(
  value: unknown,
  fields: Record<string, Check>,
  required: string[],
  minProperties = 0,
  at = 'data',
): string | null {
  if (!isObject(value)) return `${at} must be object`;
  const keys = Object.keys(value);
  if (keys.length < minProperties) return `${at} must NOT have fewer than ${minProperties} properties`;
  for (const name of required) {
    if (!(name in value)) return `${at} must have required property '${name}'`;
  }
  for (const key of keys) {
    const check = fields[key];
    if (!check) return `${at} must NOT have additional properties`;
    const problem = check(value[key], `${at}/${key}`);
    if (problem) return problem;
  }
  return null;
}
