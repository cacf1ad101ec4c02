import type { ServerResponse } from 'node:http';
import type { Database } from '../../db/client.js';
import type { ClusterService } from '../../modules/cluster/index.js';
import { sendJson } from './respond.js';

/** Liveness: the process is serving. */
export function sendHealth(res: ServerResponse): void {
  sendJson(res, 200, { status: 'ok' });
}

/**
 * Readiness: the database answers (and we are not draining for shutdown). With several instances
 * it also lists them, their last heartbeat and the leader (README "Scaling out").
 */
export async function sendReady(
  res: ServerResponse,
  database: Database,
  draining: boolean,
  cluster?: ClusterService,
): Promise<void> {
  if (draining) {
    sendJson(res, 503, { status: 'draining' });
    return;
  }
  const [ready, status] = await Promise.all([
    database.isReady(),
    cluster?.clustered ? cluster.status().catch(() => undefined) : undefined,
  ]);
  sendJson(res, ready ? 200 : 503, {
    status: ready ? 'ready' : 'database unavailable',
    database: database.engine,
    ...(status && { cluster: { self: status.self, leader: status.leader, instances: status.instances } }),
  });
}
