import type { Db } from '../db/client.js';
import type { Logger } from '../lib/logger.js';
import type { Principal } from '../modules/auth/index.js';
import type { Actor } from '../modules/events/index.js';
import type { Services } from '../modules/index.js';
import type { NodeCallBudget } from '../modules/nodes/index.js';

/**
 * Per-operation context: every module's service under its name (`ctx.nodes`, `ctx.sessions`, …),
 * and who is asking. Resolvers reach dependencies only through it and stay thin:
 * `ctx.<module>.<method>(args, ctx.actor)`.
 */
export interface Context extends Services {
  principal: Principal;
  /** The principal as the event log records who made a change (its id and name, not its role). */
  actor: Actor;
  log: Logger;
  /** Aborted when the HTTP client goes away (absent over graphql-ws): long work can stop early. */
  signal?: AbortSignal;
  /** What this operation may still ask of node APIs (calls, bytes). */
  nodeBudget: NodeCallBudget;
  /** For plugin-prisma's relation fields only; resolvers ask their module's service. */
  db: Db;
}
