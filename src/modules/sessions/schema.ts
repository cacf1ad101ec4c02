import { queryFromInfo } from '@pothos/plugin-prisma';
import { builder } from '../../graphql/builder.js';
import { connectionOf } from '../../graphql/common.js';
import { unlessOverflow } from '../../graphql/overflow.js';
import { selectedFieldNames, selectFor } from '../../graphql/selection.js';
import type { Counters, Frame } from './hub.js';
import type {
  CreateSessionPayload as CreateSessionPayloadShape,
  Session as SessionRow,
  SessionService,
} from './service.js';

const SessionStatusEnum = builder.enumType('SessionStatus', { values: ['WAITING', 'ACTIVE', 'FINISHED'] as const });

builder.prismaObject('SessionOperator', {
  name: 'Operator',
  fields: (t) => ({
    userId: t.exposeString('userId'),
    joinedAt: t.expose('joinedAt', { type: 'DateTime', description: 'When this user first connected to the session.' }),
    connected: t.boolean({
      description: 'Whether a raw relay socket of this user is connected now.',
      resolve: (op, _args, ctx) => ctx.sessions.isConnected(op.sessionId, op.userId),
    }),
  }),
});

const counter =
  (name: keyof Counters) =>
  (session: SessionRow, _args: unknown, ctx: { sessions: SessionService }): number =>
    ctx.sessions.counters(session)[name];

const Session = builder.prismaObject('Session', {
  fields: (t) => ({
    id: t.exposeID('id'),
    clientId: t.expose('clientId', { type: 'UUID' }),
    status: t.expose('status', { type: SessionStatusEnum }),
    wsUrl: t.string({
      description: "The publisher's relay URL (append `?key=<streamKey>`); operators use it with their own user id.",
      resolve: (s, _args, ctx) => ctx.sessions.wsUrl(s),
    }),
    operators: t.relation('operators', {
      description: 'Everyone who has connected as an operator, in the order they first joined.',
      query: { orderBy: [{ joinedAt: 'asc' }, { userId: 'asc' }] },
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the publisher first connected.',
    }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    // Live from the hub while the session streams on this instance, else as stored.
    framesRelayed: t.float({
      description: 'Frames relayed so far (live while streaming). A Float: exact up to 2^53.',
      resolve: counter('framesRelayed'),
    }),
    bytesRelayed: t.float({
      description: 'Payload bytes relayed so far (live while streaming). A Float: exact up to 2^53 (8 PiB).',
      resolve: counter('bytesRelayed'),
    }),
    operatorConnects: t.int({
      description: 'Raw operator connections accepted so far.',
      resolve: counter('operatorConnects'),
    }),
    operatorDisconnects: t.int({
      description: 'Raw operator connections closed so far (any reason: left, dropped, ended).',
      resolve: counter('operatorDisconnects'),
    }),
  }),
});

const SessionConnection = connectionOf('Session', Session);

const CreateSessionPayload = builder.objectRef<CreateSessionPayloadShape>('CreateSessionPayload').implement({
  description: 'Returned once, at creation: the only time the stream key is shown.',
  fields: (t) => ({
    session: t.field({ type: Session, resolve: (p) => p.session }),
    sessionId: t.exposeID('sessionId'),
    streamKey: t.exposeString('streamKey', { description: 'Secret: the publisher sends it as `?key=`.' }),
    wsUrl: t.exposeString('wsUrl'),
    status: t.field({ type: SessionStatusEnum, resolve: (p) => p.status }),
  }),
});

const StreamFrame = builder.objectRef<Frame>('StreamFrame').implement({
  description: "One message relayed from the session's publishing client, in order.",
  fields: (t) => ({
    sessionId: t.exposeID('sessionId'),
    seq: t.exposeInt('seq', { description: "The frame's position in the session, from 1." }),
    receivedAt: t.field({ type: 'DateTime', resolve: (f) => new Date(f.receivedAt) }),
    size: t.exposeInt('size', { description: 'Bytes in the frame (UTF-8 bytes for text).' }),
    binary: t.exposeBoolean('binary'),
    data: t.exposeString('data', {
      description: 'Base64 of the bytes for binary frames; the text itself for text frames.',
    }),
  }),
});

/** The columns each Session field reads (the counters: the stored ones, for a session not live here). */
const SESSION_FIELD_COLUMNS: Record<string, readonly (keyof SessionRow)[]> = {
  id: ['id'],
  clientId: ['clientId'],
  status: ['status'],
  wsUrl: ['id', 'clientId'],
  createdAt: ['createdAt'],
  startedAt: ['startedAt'],
  finishedAt: ['finishedAt'],
  framesRelayed: ['framesRelayed'],
  bytesRelayed: ['bytesRelayed'],
  operatorConnects: ['operatorConnects'],
  operatorDisconnects: ['operatorDisconnects'],
};

builder.queryFields((t) => ({
  sessions: t.field({
    type: SessionConnection,
    description: 'Sessions, newest first.',
    args: { first: t.arg.int(), after: t.arg.string(), status: t.arg({ type: SessionStatusEnum }) },
    authScopes: { viewer: true },
    // Only the columns the asked-for fields read; with `operators`, plugin-prisma's selection (the
    // relation in the same query).
    resolve: (_root, args, ctx, info) => {
      const select = selectFor(selectedFieldNames(info, ['edges', 'node']), SESSION_FIELD_COLUMNS, ['id']);
      return ctx.sessions.list(
        args,
        select ? { select } : queryFromInfo({ context: ctx, info, path: ['edges', 'node'] }),
      );
    },
  }),
  session: t.prismaField({
    type: 'Session',
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    authScopes: { viewer: true },
    resolve: (query, _root, { id }, ctx) => ctx.sessions.find(String(id), query),
  }),
}));

builder.mutationFields((t) => ({
  createSession: t.field({
    type: CreateSessionPayload,
    description: 'A new session (WAITING) for the client; its stream key is shown only here.',
    args: { clientId: t.arg({ type: 'UUID', required: true }) },
    authScopes: { operator: true },
    resolve: (_root, args, ctx) => ctx.sessions.create(args, ctx.actor),
  }),
  endSession: t.field({
    type: Session,
    description:
      'Finishes the session: relay sockets are closed with 4410, frame subscriptions complete. Ending it again returns it.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { operator: true },
    resolve: (_root, { id }, ctx) => ctx.sessions.end(String(id), ctx.actor),
  }),
}));

builder.subscriptionField('streamFrames', (t) =>
  t.field({
    type: StreamFrame,
    description:
      'Every frame the publisher sends from now on, until the session ends (then it completes). A subscriber ' +
      'that falls SESSION_OPERATOR_MAX_BUFFER bytes behind gets one SUBSCRIBER_TOO_SLOW error and is ended.',
    args: { sessionId: t.arg.id({ required: true }) },
    authScopes: { operator: true },
    subscribe: (_root, { sessionId }, ctx) => ctx.sessions.subscribeFrames(String(sessionId), ctx.actor),
    resolve: (item) => unlessOverflow(item, 'streamFrames', 'subscribe again to resume from the live edge'),
  }),
);
