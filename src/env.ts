import { hostname } from 'node:os';
import { z } from 'zod';
import { parseCidrList } from './lib/cidr.js';

/**
 * Every environment variable StreamGate reads, parsed once at boot. This table also drives
 * `streamgate --help` and the README's configuration table, so the three cannot drift apart.
 */

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const optionalUrl = (protocols: string[]) =>
  z
    .url({
      protocol: new RegExp(`^(${protocols.join('|')})$`),
      error: `must be a ${protocols.map((p) => `${p}://`).join(' or ')} URL`,
    })
    .optional();

/** `10.0.0.0/8, fd00::/8, 192.0.2.7`: checked here, so a typo stops start-up instead of allowing everything. */
const cidrList = z.string().refine(
  (value) => {
    try {
      return parseCidrList(value).length > 0;
    } catch {
      return false;
    }
  },
  { message: 'must be a comma-separated list of CIDRs or IP addresses (e.g. `10.0.0.0/8, ::1`)' },
);

/** `https://ops.example.com` or `http://localhost:3000`: exactly what a browser sends as `Origin`. */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

const spec = {
  PORT: {
    schema: port.default(4000),
    help: 'HTTP + WebSocket port (GraphQL, passthrough, raw stream, health, metrics)',
  },
  HOST: { schema: z.string().min(1).default('0.0.0.0'), help: 'bind address' },
  DATABASE_URL: {
    schema: optionalUrl(['postgres', 'postgresql']),
    help: '`postgres://…` selects PostgreSQL (`?schema=` picks a schema); unset selects the embedded database',
  },
  DATA_DIR: {
    schema: z.string().min(1).default('./data'),
    help: 'where the embedded database (and its lock file) lives',
  },
  REDIS_URL: {
    schema: optionalUrl(['redis', 'rediss']),
    help: '`redis://…`: several instances serve one deployment (needs DATABASE_URL): live events and cache invalidation cross instances (README "Scaling out"); unset = one process',
  },
  ADMIN_TOKEN: {
    schema: z.string().min(16, 'must be at least 16 characters').optional(),
    help: 'bootstrap admin bearer token; if unset on first start, one is generated and printed once',
  },
  PUBLIC_URL: {
    schema: optionalUrl(['http', 'https']),
    help: 'base for `wsUrl` in session payloads (default `http://localhost:$PORT`)',
  },
  WS_MAX_MESSAGE_SIZE: {
    schema: positiveInt.default(10_485_760),
    help: 'largest raw stream frame in bytes (larger: close 1009)',
  },
  SESSION_MAX_OPERATORS: { schema: positiveInt.default(50), help: 'operators per session (one more: close 4429)' },
  SESSION_OPERATOR_MAX_BUFFER: {
    schema: positiveInt.default(8_388_608),
    help: 'bytes queued for one raw-stream operator before it is dropped as too slow (close 4408)',
  },
  WS_PING_INTERVAL_MS: {
    schema: positiveInt.default(10_000),
    help: 'WebSocket keepalive ping; a peer that misses one pong is closed (dead peers gone within 2 intervals)',
  },
  HEALTH_MONITOR: {
    schema: z.enum(['on', 'off']).default('on'),
    help: '`off` stops scheduled health checks (manual `ping` still works)',
  },
  HEALTH_CHECK_CONCURRENCY: { schema: positiveInt.max(10_000).default(64), help: 'health checks running at once' },
  HEALTH_CHECK_TIMEOUT_MS: {
    schema: positiveInt.max(60_000).default(5_000),
    help: 'one health check longer than this is a failure',
  },
  EVENT_LOG_MIN_SEVERITY: {
    schema: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('WARN'),
    help: 'events at or above this severity are stored; health transitions and configuration changes always are',
  },
  PROXY_PORT: {
    schema: port.optional(),
    help: 'data plane: serve routed traffic by `Host` on this port; unset = off',
  },
  PROXY_HOST: {
    schema: z.string().min(1).optional(),
    help: 'data plane bind address; unset = `HOST`',
  },
  PROXY_TIMEOUT_MS: {
    schema: positiveInt.max(600_000).default(60_000),
    help: "data plane: longest wait for an upstream's response headers (then 504), for each chunk of its body (then the response is cut), and for a STREAM route's upstream to accept a connection",
  },
  STREAM_IDLE_TIMEOUT_MS: {
    schema: positiveInt.default(600_000),
    help: 'a STREAM (TCP) route connection with no byte either way for this long is closed',
  },
  ROUTES_FILE: {
    schema: z.string().min(1).optional(),
    help: 'YAML routes file (HTTP and STREAM routes), watched for changes',
  },
  NPM_URL: { schema: optionalUrl(['http', 'https']), help: 'Nginx Proxy Manager URL for proxy sync; unset = off' },
  NPM_EMAIL: { schema: z.string().min(1).optional(), help: 'Nginx Proxy Manager login' },
  NPM_PASSWORD: { schema: z.string().min(1).optional(), help: 'Nginx Proxy Manager password' },
  NPM_TIMEOUT_MS: {
    schema: positiveInt.max(120_000).default(10_000),
    help: 'one call to Nginx Proxy Manager longer than this fails (UPSTREAM_UNAVAILABLE)',
  },
  PROXMOX_URL: {
    schema: optionalUrl(['http', 'https']),
    help: 'Proxmox VE API (`https://pve:8006`): routes are linked to the nodes, containers and VMs they point at; unset = off',
  },
  PROXMOX_TOKEN_ID: {
    schema: z.string().min(1).optional(),
    help: 'Proxmox API token id, `user@realm!name` (read-only: VM.Audit and Sys.Audit on `/` suffice)',
  },
  PROXMOX_TOKEN_SECRET: { schema: z.string().min(1).optional(), help: 'Proxmox API token secret' },
  PROXMOX_INSECURE: {
    schema: z.enum(['true', 'false']).default('false'),
    help: '`true` skips TLS certificate verification towards Proxmox (a self-signed certificate): anyone on the path can then read the token',
  },
  PROXMOX_REFRESH_MS: {
    schema: positiveInt.min(1_000).default(60_000),
    help: "how often Proxmox's inventory (nodes, guests, their addresses) is read again",
  },
  RESPONSE_CACHE_TTL_MS: {
    schema: z.coerce.number().int().min(0).default(2_000),
    help: 'longest a read-only GraphQL answer is served from the cache; any database write empties it first (0: no cache)',
  },
  NODE_CALLS_PER_OPERATION: {
    schema: positiveInt.default(50),
    help: 'node API calls one GraphQL operation may make (`streams`, `traffic`, `ping`, …); past it: BUDGET_EXCEEDED on the fields left',
  },
  NODE_BYTES_PER_OPERATION: {
    schema: positiveInt.default(16 * 1024 * 1024),
    help: 'bytes of node API answers one GraphQL operation may read in all; past it: BUDGET_EXCEEDED',
  },
  INSTANCE_ID: {
    schema: z.string().min(1).max(200).optional(),
    help: "this instance's name on shared PostgreSQL: sessions it left ACTIVE when killed go back to WAITING at its next start; unset = `{hostname}:{PORT}`",
  },
  AUTH_FAILURES_PER_MINUTE: {
    schema: positiveInt.default(60),
    help: 'invalid tokens one client address may present per minute; past it: 429 (Retry-After) for a minute, one WARN event',
  },
  CORS_ORIGINS: {
    schema: z
      .string()
      .min(1)
      .transform((v) =>
        v
          .split(',')
          .map((o) => o.trim())
          .filter(Boolean),
      )
      .pipe(
        z.array(z.string().refine(isOrigin, 'must be an origin: http(s)://host[:port], no path; `*` is not allowed')),
      )
      .optional(),
    help: 'comma-separated exact origins (`https://ops.example.com`) browsers may call from (CORS, graphql-ws and relay `Origin`); unset = none',
  },
  GRAPHIQL: {
    schema: z.enum(['true', 'false']).optional(),
    help: 'serve the GraphiQL page on `GET /graphql`; unset = on unless NODE_ENV=production',
  },
  MAX_CONNECTIONS: {
    schema: positiveInt.default(4096),
    help: 'open connections per listener; past it new connections are dropped',
  },
  MAX_CONNECTIONS_PER_ADDRESS: {
    schema: positiveInt.default(1024),
    help: 'open connections from one client address (behind a load balancer: raise it to MAX_CONNECTIONS)',
  },
  HEADERS_TIMEOUT_MS: {
    schema: positiveInt.default(10_000),
    help: "a connection's request headers must arrive within this (and a new connection must start sending)",
  },
  REQUEST_TIMEOUT_MS: {
    schema: positiveInt.default(30_000),
    help: 'a request body must arrive within this (408), except passthrough uploads, which stream',
  },
  KEEP_ALIVE_TIMEOUT_MS: {
    schema: positiveInt.default(5_000),
    help: 'an idle keep-alive connection is closed after this',
  },
  EXPOSE_ERRORS: {
    schema: z.enum(['true', 'false']).default('false'),
    help: "`true` returns unexpected errors' details and stack traces: for local debugging only",
  },
  OUTBOUND_DENY: {
    schema: cidrList.optional(),
    help: 'comma-separated CIDRs no outbound connection may reach (on top of link-local and metadata, denied by default)',
  },
  OUTBOUND_ALLOW: {
    schema: cidrList.optional(),
    help: 'comma-separated CIDRs: when set, outbound connections reach only these (they may re-allow a default-denied range)',
  },
  LOG_LEVEL: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    help: 'structured JSON logs on stdout',
  },
  NODE_ENV: {
    schema: z.enum(['development', 'production', 'test']).default('development'),
    help: '`production` turns GraphiQL off unless GRAPHIQL=true (errors are masked in every mode unless EXPOSE_ERRORS=true)',
  },
  PASSTHROUGH_TIMEOUT_MS: {
    schema: positiveInt.default(30_000),
    help: "passthrough: longest wait for a node's response headers, and for each body chunk (then 504)",
  },
  SHUTDOWN_TIMEOUT_MS: {
    schema: positiveInt.default(10_000),
    help: 'on SIGTERM/SIGINT: how long in-flight requests may finish before connections are cut',
  },
} as const;

type Spec = typeof spec;
export type Env = { [K in keyof Spec]: z.output<Spec[K]['schema']> };

export class EnvError extends Error {
  override name = 'EnvError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** This instance's name (INSTANCE_ID, else host name and port): stable across restarts. */
export function instanceId(env: Pick<Env, 'INSTANCE_ID' | 'PORT'>): string {
  return env.INSTANCE_ID ?? `${hostname()}:${env.PORT}`;
}

/** Parses the environment; every bad variable is reported at once. */
export function parseEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const shape = Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, v.schema]));
  // Empty strings count as unset: `FOO= streamgate` should not be a validation error.
  const input = Object.fromEntries(Object.keys(spec).map((k) => [k, source[k] === '' ? undefined : source[k]]));
  const result = z.object(shape).safeParse(input);
  if (!result.success) {
    throw new EnvError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const env = result.data as Env;
  const problems = [
    ...requireTogether(env, ['NPM_URL', 'NPM_EMAIL', 'NPM_PASSWORD']),
    ...requireTogether(env, ['PROXMOX_URL', 'PROXMOX_TOKEN_ID', 'PROXMOX_TOKEN_SECRET']),
  ];
  if (env.REDIS_URL && !env.DATABASE_URL) {
    problems.push(
      'REDIS_URL: several instances need a shared PostgreSQL (DATABASE_URL); the embedded database is single-process, so it cannot be used with REDIS_URL',
    );
  }
  if (problems.length) throw new EnvError(problems);
  return env;
}

function requireTogether(env: Env, names: (keyof Env)[]): string[] {
  const set = names.filter((n) => env[n] !== undefined);
  if (set.length === 0 || set.length === names.length) return [];
  return names.filter((n) => env[n] === undefined).map((n) => `${n}: required when ${set.join(', ')} is set`);
}

/** Rows for `--help` and the README: name, default, meaning. */
export function envHelp(): { name: string; default: string; help: string }[] {
  return Object.entries(spec).map(([name, v]) => {
    const parsed = v.schema.safeParse(undefined);
    const def = parsed.success && parsed.data !== undefined ? String(parsed.data) : 'unset';
    return { name, default: def, help: v.help };
  });
}
