import { Agent, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { invalidResponse, NpmError, notApplied, reasonOf, redacted, statusError, unreachable } from './errors.js';
import { exchange, type NpmAnswer } from './http.js';
import {
  deletedSchema,
  describeIssues,
  proxyHostListSchema,
  proxyHostSchema,
  tokenChallengeSchema,
  tokenSchema,
} from './schemas.js';
import type { NpmProxyHost, NpmProxyHostInput } from './types.js';

export { isDomainTaken, NpmError, type NpmErrorKind } from './errors.js';

/** Default bound on each request to NPM, from connect to the last byte of the answer. */
export const NPM_DEFAULT_TIMEOUT_MS = 10_000;
/** A token is renewed this long before NPM says it expires (at most half its lifetime). */
const TOKEN_RENEW_MARGIN_MS = 60_000;

export interface NpmClientOptions {
  /** Where NPM's API is: its admin URL (`http://npm:81`); `/api/...` is appended. */
  url: string;
  email: string;
  password: string;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** Shared connection pool; without one the client owns an agent of its own (closed by close()). */
  dispatcher?: Dispatcher;
  /** How its own agent connects (the outbound address policy's connector); plain net/tls without. */
  connect?: Agent.Options['connect'];
}

interface Session {
  token: string;
  /** Epoch ms after which the token is not used again. */
  renewAt: number;
}

/**
 * Typed client for Nginx Proxy Manager's REST API (proxy hosts), written against its published
 * schema. It logs in with email and password (`POST /api/tokens`), keeps the token until shortly
 * before it expires, shares one login between concurrent calls, and logs in once more when a call
 * answers 401 (NPM restarted, token revoked) before retrying that call once.
 *
 * Every failure is an NpmError whose message names NPM, the operation and the status, and never
 * contains the password or a token. Its state is in #private fields: JSON.stringify, util.inspect
 * and a logger's serializer see none of the credentials, the token or the pool (whose requests
 * carry the token).
 */
export class NpmClient {
  readonly #base: URL;
  readonly #timeoutMs: number;
  readonly #email: string;
  readonly #password: string;
  readonly #dispatcher: Dispatcher;
  /** The agent this client made (and close() closes); null when the dispatcher was given. */
  readonly #ownAgent: Agent | null;
  #session: Session | null = null;
  #login: Promise<string> | null = null;
  #closed = false;
  /** Every token this client was given, to keep them out of error messages. */
  readonly #tokens = new Set<string>();

  constructor(options: NpmClientOptions) {
    const base = new URL(options.url);
    // Credentials, query and fragment have no place in API URLs (and would end up in messages).
    base.username = '';
    base.password = '';
    base.search = '';
    base.hash = '';
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.#base = base;
    this.#timeoutMs = options.timeoutMs ?? NPM_DEFAULT_TIMEOUT_MS;
    this.#email = options.email;
    this.#password = options.password;
    // Our own connect timeout: a shared agent's (shorter or longer) would override timeoutMs.
    this.#ownAgent = options.dispatcher
      ? null
      : new Agent({ keepAliveTimeout: 10_000, connect: options.connect ?? { timeout: this.#timeoutMs } });
    this.#dispatcher = options.dispatcher ?? (this.#ownAgent as Agent);
  }

  /** `GET /api/nginx/proxy-hosts`: every proxy host this account can see. */
  listProxyHosts(): Promise<NpmProxyHost[]> {
    const operation = 'listing proxy hosts';
    return this.guard(false, async () => {
      const answer = await this.call(operation, 'GET', 'api/nginx/proxy-hosts');
      return this.parse(operation, this.expectSuccess(operation, answer), proxyHostListSchema);
    });
  }

  /** `GET /api/nginx/proxy-hosts/{id}`; null when NPM has no such host. */
  getProxyHost(id: number): Promise<NpmProxyHost | null> {
    const operation = `reading proxy host #${id}`;
    return this.guard(false, async () => {
      const answer = await this.call(operation, 'GET', hostPath(id));
      if (answer.status === 404) return null;
      return this.parse(operation, this.expectSuccess(operation, answer), proxyHostSchema);
    });
  }

  /** `POST /api/nginx/proxy-hosts`; NPM answers 201 with the new host (and writes its nginx config). */
  createProxyHost(input: NpmProxyHostInput): Promise<NpmProxyHost> {
    const operation = 'creating a proxy host';
    return this.guard(true, async () => {
      const answer = await this.call(operation, 'POST', 'api/nginx/proxy-hosts', input);
      return this.parse(operation, this.expectSuccess(operation, answer), proxyHostSchema);
    });
  }

  /** `PUT /api/nginx/proxy-hosts/{id}` with the fields to change; NpmError `not_found` when it is gone. */
  updateProxyHost(id: number, input: Partial<NpmProxyHostInput>): Promise<NpmProxyHost> {
    const operation = `updating proxy host #${id}`;
    return this.guard(true, async () => {
      const answer = await this.call(operation, 'PUT', hostPath(id), input);
      return this.parse(operation, this.expectSuccess(operation, answer), proxyHostSchema);
    });
  }

  /** `DELETE /api/nginx/proxy-hosts/{id}`: true when deleted, false when it was already gone. */
  deleteProxyHost(id: number): Promise<boolean> {
    const operation = `deleting proxy host #${id}`;
    return this.guard(true, async () => {
      const answer = await this.call(operation, 'DELETE', hostPath(id));
      if (answer.status === 404) return false;
      this.parse(operation, this.expectSuccess(operation, answer), deletedSchema);
      return true;
    });
  }

  /**
   * Ends the client: later calls fail at once (NpmError `unreachable`, "the client is closed",
   * `mayHaveApplied` false) and the token is forgotten. The agent this client made is closed once
   * the requests in flight are done (each within timeoutMs): cutting them would leave NPM changed
   * with no one told. A dispatcher that was passed in is left open; it is its owner's to close.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#session = null;
    await this.#ownAgent?.close();
  }

  /** An authenticated call; a 401 means the token went stale: one fresh login, one retry. */
  private async call(
    operation: string,
    method: Dispatcher.HttpMethod,
    path: string,
    body?: unknown,
  ): Promise<NpmAnswer> {
    this.assertOpen(operation);
    const token = await this.loggedIn();
    const answer = await this.send(operation, method, path, body, token);
    if (answer.status !== 401) return answer;
    if (this.#session?.token === token) this.#session = null;
    return this.send(operation, method, path, body, await this.loggedIn());
  }

  /** A token; a failed login changed nothing, since the call itself was not sent (or was answered 401). */
  private async loggedIn(): Promise<string> {
    try {
      return await this.token();
    } catch (error) {
      throw error instanceof NpmError ? notApplied(error) : error;
    }
  }

  /** The cached token, or the result of the one login in flight (started if there is none). */
  private token(): Promise<string> {
    if (this.#session && Date.now() < this.#session.renewAt) return Promise.resolve(this.#session.token);
    this.#login ??= this.logIn().finally(() => {
      this.#login = null;
    });
    return this.#login;
  }

  private async logIn(): Promise<string> {
    const operation = 'logging in';
    const credentials = { identity: this.#email, secret: this.#password };
    const answer = await this.send(operation, 'POST', 'api/tokens', credentials, null);
    if (answer.status === 401 || answer.status === 403) {
      const { npmMessage, reason } = reasonOf(answer.status, answer.body);
      const message = `Nginx Proxy Manager refused the login (HTTP ${answer.status}): ${reason}`;
      throw new NpmError('auth', message, answer.status, npmMessage, false);
    }
    const json = this.json(operation, this.expectSuccess(operation, answer));
    if (tokenChallengeSchema.safeParse(json).success) {
      throw new NpmError(
        'auth',
        'Nginx Proxy Manager asks this account for a two-factor code, which StreamGate does not support; ' +
          'use an account without two-factor authentication',
        answer.status,
        null,
        false,
      );
    }
    const parsed = tokenSchema.safeParse(json);
    if (!parsed.success) throw invalidResponse(operation, answer.status, describeIssues(parsed.error));
    const { token, expires } = parsed.data;
    this.#tokens.add(token);
    // Only recent tokens can show up in an answer; the set stays small in a long-running process.
    if (this.#tokens.size > 8) this.#tokens.delete(this.#tokens.values().next().value as string);
    const expiresAt = expiryOf(expires);
    if (expiresAt === null) throw invalidResponse(operation, answer.status, `expires: not a time (${String(expires)})`);
    const now = Date.now();
    const margin = Math.min(TOKEN_RENEW_MARGIN_MS, Math.max(0, (expiresAt - now) / 2));
    this.#session = { token, renewAt: expiresAt - margin };
    return token;
  }

  private async send(
    operation: string,
    method: Dispatcher.HttpMethod,
    path: string,
    body: unknown,
    token: string | null,
  ): Promise<NpmAnswer> {
    // Again here: a call can outlive close() while it waits for a login.
    this.assertOpen(operation);
    const url = new URL(path, this.#base);
    return exchange(this.#dispatcher, { operation, method, url, token, body, timeoutMs: this.#timeoutMs });
  }

  private assertOpen(operation: string): void {
    if (this.#closed) throw unreachable(operation, this.#base.origin, 'the client is closed', false);
  }

  /** The answer when it is a 2xx; otherwise the NpmError its status stands for. */
  private expectSuccess(operation: string, answer: NpmAnswer): NpmAnswer {
    if (answer.status >= 200 && answer.status < 300) return answer;
    throw statusError(operation, answer.status, answer.body, answer.location);
  }

  private json(operation: string, answer: NpmAnswer): unknown {
    try {
      return JSON.parse(answer.body);
    } catch {
      const start = answer.body.trim().slice(0, 40);
      throw invalidResponse(operation, answer.status, `not JSON (starts with ${JSON.stringify(start)})`);
    }
  }

  private parse<T>(operation: string, answer: NpmAnswer, schema: z.ZodType<T>): T {
    const parsed = schema.safeParse(this.json(operation, answer));
    if (!parsed.success) throw invalidResponse(operation, answer.status, describeIssues(parsed.error));
    return parsed.data;
  }

  /**
   * Last line of defence: whatever NPM echoed, the password and tokens never leave in a message.
   * A call that `writes` nothing (a GET) cannot have changed NPM, whatever became of it.
   */
  private async guard<T>(writes: boolean, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof NpmError)) throw error;
      const clean = redacted(error, [this.#password, ...this.#tokens]);
      throw writes ? clean : notApplied(clean);
    }
  }
}

function hostPath(id: number): string {
  if (!Number.isInteger(id) || id < 1) throw new RangeError(`a proxy host id is a positive integer, not ${id}`);
  return `api/nginx/proxy-hosts/${id}`;
}

/** `expires` as epoch ms: ISO text (NPM 2.x), or Unix time in seconds (or ms) from other versions. */
function expiryOf(expires: string | number): number | null {
  if (typeof expires === 'number') return expires < 1e12 ? expires * 1000 : expires;
  const ms = Date.parse(expires);
  return Number.isNaN(ms) ? null : ms;
}
