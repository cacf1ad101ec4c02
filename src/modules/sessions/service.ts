import type { Db } from '../../db/client.js';
import { type Env, instanceId } from '../../env.js';
import type { Prisma, Session } from '../../generated/prisma/client.js';
import type { SessionStatus } from '../../generated/prisma/enums.js';
import type { Overflow } from '../../lib/bounded-stream.js';
import { notFound } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { type PageArgs, pageQuery, toPage } from '../../lib/pagination.js';
import { isUuid } from '../../lib/uuid.js';
import { parseInput } from '../../lib/validate.js';
import type { AuthService } from '../auth/index.js';
import type { RelayLink } from '../cluster/index.js';
import type { Actor, EventBus } from '../events/index.js';
import { countersOf } from './counter-book.js';
import type { Counters, Frame } from './hub.js';
import { createSessionSchema } from './input.js';
import { LiveSessions } from './live.js';
import { StreamRelay } from './relay.js';
import { generateStreamKey, hashStreamKey, streamUrl } from './stream-keys.js';

export type { Session };

const CURSOR_PREFIX = 'session';

export interface CreateSessionPayload {
  session: Session;
  sessionId: string;
  streamKey: string;
  wsUrl: string;
  status: SessionStatus;
}

export interface SessionServiceOptions {
  env: Env;
  db: Db;
  log: Logger;
  events: EventBus;
  auth: AuthService;
  /** The embedded database: no other instance can hold a session, so every ACTIVE one is recovered. */
  singleProcess: boolean;
  /** The other instances' side of the relay (REDIS_URL); null for one process. */
  link: RelayLink | null;
}

/** Prisma's selection for a Session, as plugin-prisma derives it from the GraphQL query. */
type SessionSelection = Omit<Prisma.SessionFindManyArgs, 'where' | 'orderBy' | 'take'>;

/**
 * Live sessions: the stored sessions, what is live on this instance (`live`), and the raw
 * WebSocket relay the server hands `/ws/stream/…` upgrades to (`relay`).
 */
export class SessionService {
  readonly live: LiveSessions;
  readonly relay: StreamRelay;
  private readonly db: Db;

  constructor(private readonly options: SessionServiceOptions) {
    const { env, db, log, events, auth, link } = options;
    this.db = db;
    this.live = new LiveSessions({
      db,
      log,
      events,
      maxOperators: env.SESSION_MAX_OPERATORS,
      maxBufferBytes: env.SESSION_OPERATOR_MAX_BUFFER,
      instance: instanceId(env),
      link,
    });
    this.relay = new StreamRelay({ env, log, events, auth, live: this.live });
  }

  /** Sessions a killed instance left ACTIVE (this one's, or all on a single-process database) are WAITING again. */
  recover(): Promise<void> {
    return this.live.recover(this.options.singleProcess);
  }

  /** The URL a session's publisher connects to (PUBLIC_URL, default `http://localhost:$PORT`). */
  wsUrl(session: { id: string; clientId: string }): string {
    const { env } = this.options;
    return streamUrl(env.PUBLIC_URL ?? `http://localhost:${env.PORT}`, session.id, session.clientId);
  }

  /** A new WAITING session with a fresh stream key: the only time the key is ever shown. */
  async create(input: { clientId: unknown }, actor: Actor): Promise<CreateSessionPayload> {
    const { clientId } = parseInput(createSessionSchema, input);
    const streamKey = generateStreamKey();
    const session = await this.db.session.create({
      data: { clientId: clientId.toLowerCase(), streamKeyHash: hashStreamKey(streamKey) },
    });
    this.options.events.emit(
      {
        type: 'session.created',
        source: 'sessions',
        severity: 'INFO',
        message: `session ${session.id} created for client ${session.clientId}`,
        details: { sessionId: session.id, clientId: session.clientId },
      },
      actor,
    );
    return { session, sessionId: session.id, streamKey, wsUrl: this.wsUrl(session), status: session.status };
  }

  /**
   * Ends a session: FINISHED, every relay socket closed with 4410, every frame subscription
   * completed. Ending a finished session again returns it unchanged.
   */
  async end(id: string, actor: Actor): Promise<Session> {
    if (!isUuid(id)) throw notFound('session', id);
    const sessionId = id.toLowerCase();
    await this.live.end(sessionId, actor);
    const session = await this.db.session.findUnique({ where: { id: sessionId } });
    if (!session) throw notFound('session', id);
    return session;
  }

  /** Newest first; `status` filters. `select` is plugin-prisma's selection (operators in one go). */
  async list(args: PageArgs & { status?: SessionStatus | null }, select: SessionSelection = {}) {
    const page = pageQuery(CURSOR_PREFIX, args, isUuid);
    const rows = await this.db.session.findMany({
      ...select,
      where: {
        ...(args.status ? { status: args.status } : {}),
        ...(page.afterKey ? { id: { lt: page.afterKey } } : {}),
      },
      orderBy: { id: 'desc' },
      take: page.take,
    });
    return toPage(CURSOR_PREFIX, rows, page, (s) => s.id);
  }

  /** One session by id; null for an unknown or malformed id. */
  find(id: string, select: Pick<Prisma.SessionFindUniqueArgs, 'select' | 'include'> = {}): Promise<Session | null> {
    if (!isUuid(id)) return Promise.resolve(null);
    return this.db.session.findUnique({ ...select, where: { id: id.toLowerCase() } });
  }

  /** Frames, bytes and operator counts: live from the hub while the session is live here, else stored. */
  counters(session: Session): Counters {
    return this.live.counters(session.id, countersOf(session));
  }

  /** Whether a raw relay socket of this user is connected to the session now, on any instance. */
  isConnected(sessionId: string, userId: string): Promise<boolean> {
    return this.live.isConnected(sessionId, userId);
  }

  /** `streamFrames`: every frame the session's publisher sends from now on, until the session ends. */
  async subscribeFrames(id: string, actor: Actor): Promise<AsyncIterable<Frame | Overflow>> {
    const stream = isUuid(id) ? await this.live.subscribe(id.toLowerCase(), `graphql:${actor.name}`) : null;
    if (!stream) throw notFound('session', id);
    return stream;
  }
}
