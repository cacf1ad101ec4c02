import type { Context } from '../../context.js';
import type { Db } from '../../db/client.js';
import type { Prisma, Session } from '../../generated/prisma/client.js';
import type { SessionStatus } from '../../generated/prisma/enums.js';
import { notFound, subscriberTooSlow } from '../../lib/errors.js';
import { type PageArgs, pageQuery, toPage } from '../../lib/pagination.js';
import { parseInput } from '../../lib/validate.js';
import type { Actor } from '../events/types.js';
import type { StreamOverflow } from './frame-stream.js';
import type { Counters, Frame } from './hub.js';
import { createSessionSchema, generateStreamKey, hashStreamKey, isUuid } from './validation.js';

export type { Session };

const CURSOR_PREFIX = 'session';

type SessionContext = Pick<Context, 'db' | 'relay' | 'events' | 'principal'>;

const actorOf = (ctx: Pick<Context, 'principal'>): Actor => ({ id: ctx.principal.id, name: ctx.principal.name });

export interface CreateSessionPayload {
  session: Session;
  sessionId: string;
  streamKey: string;
  wsUrl: string;
  status: SessionStatus;
}

/** A new WAITING session with a fresh stream key: the only time the key is ever shown. */
export async function createSession(ctx: SessionContext, input: { clientId: unknown }): Promise<CreateSessionPayload> {
  const { clientId } = parseInput(createSessionSchema, input);
  const streamKey = generateStreamKey();
  const session = await ctx.db.session.create({
    data: { clientId: clientId.toLowerCase(), streamKeyHash: hashStreamKey(streamKey) },
  });
  ctx.events.emit(
    {
      type: 'session.created',
      source: 'sessions',
      severity: 'INFO',
      message: `session ${session.id} created for client ${session.clientId}`,
      details: { sessionId: session.id, clientId: session.clientId },
    },
    actorOf(ctx),
  );
  return { session, sessionId: session.id, streamKey, wsUrl: ctx.relay.wsUrl(session), status: session.status };
}

/**
 * Ends a session: FINISHED, every relay socket closed with 4410, every frame subscription
 * completed. Ending a finished session again returns it unchanged.
 */
export async function endSession(ctx: SessionContext, id: string): Promise<Session> {
  if (!isUuid(id)) throw notFound('session', id);
  const sessionId = id.toLowerCase();
  await ctx.relay.live.end(sessionId, actorOf(ctx));
  const session = await ctx.db.session.findUnique({ where: { id: sessionId } });
  if (!session) throw notFound('session', id);
  return session;
}

/** Newest first; `status` filters. `query` carries plugin-prisma's selection (operators in one go). */
export async function listSessions(
  db: Db,
  args: PageArgs & { status?: SessionStatus | null },
  query: Omit<Prisma.SessionFindManyArgs, 'where' | 'orderBy' | 'take'> = {},
) {
  const page = pageQuery(CURSOR_PREFIX, args, isUuid);
  const rows = await db.session.findMany({
    ...query,
    where: {
      ...(args.status ? { status: args.status } : {}),
      ...(page.afterKey ? { id: { lt: page.afterKey } } : {}),
    },
    orderBy: { id: 'desc' },
    take: page.take,
  });
  return toPage(CURSOR_PREFIX, rows, page, (s) => s.id);
}

/** The where clause for one session by id; null for a malformed id (so: no such session). */
export function sessionWhere(id: string): { id: string } | null {
  return isUuid(id) ? { id: id.toLowerCase() } : null;
}

/** Frames, bytes and operator counts: live from the hub while the session is live here, else stored. */
export function countersOf(ctx: Pick<Context, 'relay'>, session: Session): Counters {
  return ctx.relay.live.counters(session.id, {
    framesRelayed: Number(session.framesRelayed),
    bytesRelayed: Number(session.bytesRelayed),
    operatorConnects: session.operatorConnects,
    operatorDisconnects: session.operatorDisconnects,
  });
}

/** `streamFrames`: every frame the session's publisher sends from now on, until the session ends. */
export async function subscribeFrames(
  ctx: Pick<Context, 'relay' | 'principal'>,
  id: string,
): Promise<AsyncIterable<Frame | StreamOverflow>> {
  const stream = isUuid(id) ? await ctx.relay.live.subscribe(id.toLowerCase(), `graphql:${ctx.principal.name}`) : null;
  if (!stream) throw notFound('session', id);
  return stream;
}

/** A subscription item as the StreamFrame it stands for; the overflow marker becomes the error that ends it. */
export function frameOrError(item: Frame | StreamOverflow): Frame {
  if ('seq' in item) return item;
  throw subscriberTooSlow(
    `streamFrames: this subscription could not keep up (${item.backlog.frames} frames, ${item.backlog.bytes} bytes ` +
      `queued; limit ${item.limitBytes} bytes) and was ended; subscribe again to resume from the live edge`,
    { limitBytes: item.limitBytes },
  );
}
