import type { ServerResponse } from 'node:http';
import type { Database } from '../../db/client.js';
import { sendJson } from './respond.js';

/** Liveness: the process is serving. */
export function sendHealth(res: ServerResponse): void {
  sendJson(res, 200, { status: 'ok' });
}

/** Readiness: the database answers (and we are not draining for shutdown). */
export async function sendReady(res: ServerResponse, database: Database, draining: boolean): Promise<void> {
  if (draining) {
    sendJson(res, 503, { status: 'draining' });
    return;
  }
  const ready = await database.isReady();
  sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'database unavailable', database: database.engine });
}
