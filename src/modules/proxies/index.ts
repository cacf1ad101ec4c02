import type { Env } from '../../env.js';
import type { ClusterService } from '../cluster/index.js';
import type { EventBus } from '../events/index.js';
import type { HealthMonitor } from '../health/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import type { SettingsService } from '../settings/index.js';
import { NpmClient } from './npm/client.js';
import { ProxyService } from './service.js';
import { NpmSync } from './sync.js';
import './schema.js'; // registers the module's GraphQL types

type ProxiesDeps = CoreDeps & {
  events: EventBus;
  settings: SettingsService;
  health: HealthMonitor;
  cluster: ClusterService;
};

/** Reverse proxies: destination validation, lifecycle, Nginx Proxy Manager sync, health. */
export const proxiesModule = defineModule({
  name: 'proxies',
  create: (deps: ProxiesDeps) =>
    new ProxyService({
      db: deps.db,
      events: deps.events,
      settings: deps.settings,
      health: deps.health,
      agent: deps.http.upstreams,
      policy: deps.http.policy,
      checkTimeoutMs: deps.env.HEALTH_CHECK_TIMEOUT_MS,
      npm: npmSync(deps.env, deps),
      // Changes that call NPM run one at a time across instances too (waiting up to a minute).
      exclusive: (section) => deps.cluster.exclusive('proxies', 60_000, section),
    }),
  healthSources: (proxies) => [proxies.healthSource],
  // NPM calls still under way finish (and are undone if need be) while the event log is open.
  stop: (proxies) => proxies.close(),
});

/** Nginx Proxy Manager sync when NPM_URL (and, as env.ts requires, its credentials) are set. */
function npmSync(env: Env, deps: ProxiesDeps): NpmSync | null {
  const { NPM_URL: url, NPM_EMAIL: email, NPM_PASSWORD: password } = env;
  if (!url || !email || !password) return null;
  const connect = deps.http.policy.connector({ timeout: env.NPM_TIMEOUT_MS });
  const client = new NpmClient({ url, email, password, timeoutMs: env.NPM_TIMEOUT_MS, connect });
  const installationId = async () => (await deps.settings.get()).installationId;
  return new NpmSync({ client, db: deps.db, events: deps.events, log: deps.log, installationId });
}

export { proxyHealth } from './health.js';
export { ProxyRef } from './schema.js';
export { ProxyService } from './service.js';
export { httpProbe } from './validation/http-probe.js';
export { parseDestination } from './validation/syntax.js';
export { connectStep } from './validation/tcp.js';
