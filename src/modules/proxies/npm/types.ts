/**
 * Nginx Proxy Manager's API objects, from its published schema (NginxProxyManager/nginx-proxy-manager,
 * `backend/schema/`). Only what every published version agrees on is typed: the fields each
 * version lists as `required` for a proxy host. Newer NPMs send more (`ssl_key_type`,
 * `default_server`, `trust_forwarded_proto`, the expanded `certificate`/`owner`/`access_list`);
 * those are kept on the object as extra keys but not relied on.
 */

/** One upstream for a sub-path of a proxy host (`locations[]`). */
export interface NpmProxyHostLocation {
  id?: number | null;
  path: string;
  forward_scheme: 'http' | 'https';
  forward_host: string;
  forward_port: number;
  forward_path?: string;
  advanced_config?: string;
}

/** A proxy host as NPM returns it (components/proxy-host-object.json). */
export interface NpmProxyHost {
  id: number;
  /**
   * As the database gives them: ISO 8601 (`2024-10-08T23:23:03.000Z`, NPM's schema examples, MySQL)
   * or `2024-10-08 23:23:03` (SQLite, the default: `datetime('now')`, UTC; older NPMs used local
   * time). Parse with care.
   */
  created_on: string;
  modified_on: string;
  owner_user_id: number;
  domain_names: string[];
  forward_scheme: 'http' | 'https';
  /** Host name or address; NPM appends anything after a `/` to proxy_pass as a path. */
  forward_host: string;
  forward_port: number;
  access_list_id: number;
  /** 0 = no certificate. */
  certificate_id: number;
  ssl_forced: boolean;
  caching_enabled: boolean;
  block_exploits: boolean;
  advanced_config: string;
  /** Free-form; NPM adds `nginx_online` / `nginx_err` after writing the nginx config. */
  meta: Record<string, unknown>;
  allow_websocket_upgrade: boolean;
  http2_support: boolean;
  enabled: boolean;
  locations: NpmProxyHostLocation[];
  hsts_enabled: boolean;
  hsts_subdomains: boolean;
}

/**
 * The body of `POST /api/nginx/proxy-hosts` (the first four are required there); `PUT` takes any
 * non-empty subset. NPM refuses keys it does not know (`additionalProperties: false`).
 */
export interface NpmProxyHostInput {
  domain_names: string[];
  forward_scheme: 'http' | 'https';
  forward_host: string;
  forward_port: number;
  /** A certificate id, 0 for none, or `'new'` to have NPM request one from Let's Encrypt. */
  certificate_id?: number | 'new';
  ssl_forced?: boolean;
  hsts_enabled?: boolean;
  hsts_subdomains?: boolean;
  http2_support?: boolean;
  block_exploits?: boolean;
  caching_enabled?: boolean;
  allow_websocket_upgrade?: boolean;
  access_list_id?: number;
  advanced_config?: string;
  enabled?: boolean;
  meta?: Record<string, unknown>;
  locations?: NpmProxyHostLocation[];
}

/** `POST /api/tokens` success (components/token-object.json). */
export interface NpmToken {
  token: string;
  /** ISO 8601 in NPM 2.x; a Unix time (seconds) in some versions. */
  expires: string | number;
}

/** `POST /api/tokens` when the account has two-factor auth on (components/token-challenge.json). */
export interface NpmTokenChallenge {
  requires_2fa: true;
  challenge_token: string;
}

/** Every NPM error answer (components/error.json): `{ "error": { "code": 400, "message": "…" } }`. */
export interface NpmErrorBody {
  error: { code: number; message: string };
}
