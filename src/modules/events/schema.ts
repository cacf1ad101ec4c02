import type { EventLog } from '../../generated/prisma/client.js';
import { builder } from '../../graphql/builder.js';
import { connectionOf } from '../../graphql/common.js';
import { unlessOverflow } from '../../graphql/overflow.js';
import { selectedFieldNames, selectFor } from '../../graphql/selection.js';
import { newerThan } from './cursor.js';
import { parseSource } from './query.js';
import { EVENT_SOURCES, type EventLogEntry, SEVERITIES } from './types.js';

const SeverityEnum = builder.enumType('Severity', { values: SEVERITIES });

const EventActor = builder.objectRef<NonNullable<EventLogEntry['actor']>>('EventActor').implement({
  description: 'Who caused an event: the bearer token (its id, or `env` for ADMIN_TOKEN) and its name.',
  fields: (t) => ({ id: t.exposeID('id'), name: t.exposeString('name') }),
});

const EventLogEntryRef = builder.objectRef<EventLogEntry>('EventLogEntry').implement({
  description: 'One event, as stored in the event log and as streamed by `eventLogged`.',
  fields: (t) => ({
    id: t.exposeID('id', {
      description: 'The stored sequence number; `live-…` for an entry that was published but not stored.',
    }),
    severity: t.field({ type: SeverityEnum, resolve: (e) => e.severity }),
    source: t.exposeString('source', { description: `One of ${EVENT_SOURCES.join(', ')}.` }),
    type: t.exposeString('type', { description: 'What happened, e.g. `node.created` (see the README for the list).' }),
    message: t.exposeString('message'),
    details: t.field({ type: 'JSON', nullable: true, resolve: (e) => e.details }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    actor: t.field({
      type: EventActor,
      nullable: true,
      description: 'Who made the change, for configuration changes; null for the system.',
      resolve: (e) => e.actor,
    }),
    cursor: t.string({
      description:
        'Catch-up cursor: `events(after: cursor)` returns every entry stored after this one, oldest first ' +
        '(page on with the last edge cursor while `hasNextPage`). A subscriber that reconnects passes the ' +
        'cursor of the last entry it saw and misses nothing. For an entry that was not stored (`live-…`), ' +
        'it points after the last entry stored before it.',
      resolve: (e) => newerThan(e.position),
    }),
  }),
});

const EventLogEntryConnection = connectionOf('EventLogEntry', EventLogEntryRef);

/** The columns each EventLogEntry field reads (entryOf); `seq` (id, cursors) is always read. */
const EVENT_FIELD_COLUMNS: Record<string, readonly (keyof EventLog)[]> = {
  id: ['seq'],
  cursor: ['seq'],
  severity: ['severity'],
  source: ['source'],
  type: ['type'],
  message: ['message'],
  details: ['details'],
  createdAt: ['createdAt'],
  actor: ['actorId', 'actorName'],
};

builder.queryField('events', (t) =>
  t.field({
    type: EventLogEntryConnection,
    description:
      'The stored event log, newest first; edge cursors page to older entries. After a catch-up cursor ' +
      '(`EventLogEntry.cursor`) it returns instead what was stored after that entry, oldest first, with ' +
      'catch-up cursors on its edges. Filters: `severity` (any of), `source`. Bad cursors or filters are ' +
      'BAD_USER_INPUT.',
    args: {
      first: t.arg.int({ description: '0 to 100; default 20' }),
      after: t.arg.string(),
      severity: t.arg({ type: [SeverityEnum] }),
      source: t.arg.string({ description: `One of ${EVENT_SOURCES.join(', ')}.` }),
    },
    authScopes: { viewer: true },
    // Only the columns the asked-for fields read (a whole row costs Prisma twice as much to map).
    resolve: (_root, args, ctx, info) =>
      ctx.events.list(args, selectFor(selectedFieldNames(info, ['edges', 'node']), EVENT_FIELD_COLUMNS, ['seq'])),
  }),
);

builder.subscriptionField('eventLogged', (t) =>
  t.field({
    type: EventLogEntryRef,
    description:
      'Every event as it happens (stored or not), in order, filtered by minimum severity and source. A ' +
      'subscriber that falls more than 10,000 entries behind gets one error (SUBSCRIBER_TOO_SLOW) and the end ' +
      'of the stream; it resumes with `events(after: <cursor of the last entry it saw>)`.',
    args: {
      minSeverity: t.arg({ type: SeverityEnum }),
      source: t.arg.string(),
      after: t.arg.string({
        description:
          'Resume: the catch-up cursor (`EventLogEntry.cursor`) of the last entry seen. What was stored after ' +
          'it comes first (oldest first, same filters), then the live stream, with no gap and no entry twice. ' +
          'Entries below EVENT_LOG_MIN_SEVERITY are never stored, so those missed are not replayed.',
      }),
    },
    authScopes: { viewer: true },
    subscribe: (_root, { minSeverity, source, after }, ctx) => {
      const filter = { minSeverity, source: parseSource(source) };
      return after == null ? ctx.events.subscribe(filter) : ctx.events.resume(filter, after);
    },
    resolve: (entry) =>
      unlessOverflow(entry, 'eventLogged', 'resume with events(after: <cursor of the last entry seen>)'),
  }),
);
