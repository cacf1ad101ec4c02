/**
 * Lists every route, grouped by provider (routes file, proxies, nodes), with its health.
 * Run: `npx tsx examples/routes.ts`.
 */
import { connect } from './connect.js';

const sg = connect();
const { routesByProvider } = await sg.routesByProvider();
if (routesByProvider.length === 0) console.log('no routes');
for (const { provider, routes } of routesByProvider) {
  console.log(`${provider}: ${routes.length} route(s)`);
  for (const r of routes) {
    const where = r.kind === 'STREAM' ? `:${r.listenPort}` : (r.host ?? `${r.alias}.*`);
    const why = r.excludedReason ? ` — ${r.excludedReason}` : '';
    console.log(`  ${r.kind.padEnd(8)} ${r.alias} (${where}) → ${r.upstreamUrl ?? '?'} [${r.health.status}]${why}`);
  }
}
