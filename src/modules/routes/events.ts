import type { EventOf } from '../events/index.js';

declare module '../events/index.js' {
  interface EventCatalog {
    'route.excluded': EventOf<
      'route.excluded',
      'routes',
      { alias: string; provider: string; origin: string; reason: string }
    >;
    'routes.source_invalid': EventOf<
      'routes.source_invalid',
      'routes',
      { provider: string; file: string | null; line: number | null; error: string }
    >;
    'routes.source_removed': EventOf<
      'routes.source_removed',
      'routes',
      { provider: string; removed: number; reason: string }
    >;
    'routes.reloaded': EventOf<
      'routes.reloaded',
      'routes',
      { provider: string; added: number; removed: number; active: number; excluded: number }
    >;
    'route.upstream_unavailable': EventOf<
      'route.upstream_unavailable',
      'routes',
      { alias: string; upstream: string; error: string }
    >;
    'proxmox.unreachable': EventOf<'proxmox.unreachable', 'routes', { error: string }>;
    'proxmox.auth_failed': EventOf<'proxmox.auth_failed', 'routes', { error: string }>;
    'proxmox.recovered': EventOf<'proxmox.recovered', 'routes', { resources: number }>;
    'route.upstream_recovered': EventOf<'route.upstream_recovered', 'routes', { alias: string; upstream: string }>;
  }
}
