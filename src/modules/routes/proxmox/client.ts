import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import { describeError } from '../../../lib/errors.js';
import { readBodyText } from '../../../lib/read-body.js';

/**
 * How a Proxmox call failed: `auth` (401/403: the token is wrong or lacks a privilege), or
 * `unreachable` (no answer, a 5xx, an answer that is not the API's).
 */
export class ProxmoxError extends Error {
  override name = 'ProxmoxError';
  constructor(
    readonly kind: 'auth' | 'unreachable',
    message: string,
  ) {
    super(message);
  }
}

export interface ProxmoxClientOptions {
  /** PROXMOX_URL: `https://pve.example.com:8006` (a path prefix before `/api2/json` is kept). */
  url: string;
  tokenId: string;
  tokenSecret: string;
  /** Through the outbound address policy; TLS verification as PROXMOX_INSECURE says. */
  dispatcher: Dispatcher;
  timeoutMs: number;
}

/** Larger than any inventory a cluster sends; a body past it is not the API's. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** Reads Proxmox VE's JSON API (`/api2/json/...`) with an API token; nothing else. */
export class ProxmoxClient {
  private readonly base: URL;
  private readonly authorization: string;

  constructor(private readonly options: ProxmoxClientOptions) {
    this.base = new URL(`${options.url.replace(/\/+$/, '')}/api2/json/`);
    // Proxmox's API token header: `PVEAPIToken=<user>@<realm>!<token name>=<secret>`.
    this.authorization = `PVEAPIToken=${options.tokenId}=${options.tokenSecret}`;
  }

  /** GETs `path` (relative: `cluster/resources`) and returns its `data`, checked by `schema`. */
  async get<T>(path: string, schema: z.ZodType<T>): Promise<T> {
    const url = new URL(path, this.base);
    const where = `Proxmox ${url.pathname}`;
    let response: Dispatcher.ResponseData;
    try {
      response = await this.options.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'GET',
        headers: { authorization: this.authorization, accept: 'application/json' },
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      throw new ProxmoxError('unreachable', `${where}: ${describeError(error)}`);
    }
    const text = await readBodyText(response.body, MAX_ANSWER_BYTES).catch((error: unknown) => {
      throw new ProxmoxError('unreachable', `${where}: the answer broke off: ${describeError(error)}`);
    });
    const { statusCode: status } = response;
    if (status === 401 || status === 403) {
      throw new ProxmoxError(
        'auth',
        `${where}: HTTP ${status}: the API token was refused or lacks a privilege ` +
          '(check PROXMOX_TOKEN_ID, PROXMOX_TOKEN_SECRET, and that the token may read /, VM.Audit and Sys.Audit)',
      );
    }
    if (status < 200 || status >= 300) throw new ProxmoxError('unreachable', `${where}: HTTP ${status}`);
    if (text === null)
      throw new ProxmoxError('unreachable', `${where}: the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ProxmoxError('unreachable', `${where}: the answer is not JSON (is PROXMOX_URL the API's address?)`);
    }
    const parsed = schema.safeParse((body as { data?: unknown } | null)?.data);
    if (!parsed.success) {
      throw new ProxmoxError('unreachable', `${where}: unexpected answer: ${parsed.error.issues[0]?.message}`);
    }
    return parsed.data;
  }
}
