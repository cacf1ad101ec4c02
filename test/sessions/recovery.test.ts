import { describe, expect, it } from 'vitest';
import { instanceId, parseEnv } from '../../src/env.js';
import { hashToken } from '../../src/modules/auth/tokens.js';
import { recoverActiveSessions, transition } from '../../src/modules/sessions/lifecycle.js';
import { startTestApp } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { eventually, newSession, publisher, sessionState } from './helpers.js';

/**
 * Clean recovery after a crash: a session whose publisher was connected when the process was
 * killed is ACTIVE in the database with nobody behind it. The next start of that instance puts it
 * back to WAITING (docs/relay.md promises that), with an event; other instances' sessions stay.
 */

describe('sessions left ACTIVE by a killed instance', () => {
  it('a publisher makes its session ACTIVE on this instance', async () => {
    const app = await startTestApp();
    const s = await newSession(app);
    const pub = publisher(app, s);
    await pub.opened;
    await eventually(async () => expect((await sessionState(app, s.sessionId)).status).toBe('ACTIVE'));
    const row = await app.db.prisma.session.findUniqueOrThrow({ where: { id: s.sessionId } });
    expect(row.activeOn).toBe(instanceId(app.deps.env));
    pub.ws.close();
    await eventually(async () =>
      expect(await app.db.prisma.session.findUniqueOrThrow({ where: { id: s.sessionId } })).toMatchObject({
        status: 'WAITING',
        activeOn: null,
      }),
    );
  });

  it('are WAITING again after the next start, with a WARN event, and accept a publisher', async () => {
    // What kill -9 leaves behind: the row of a session whose publisher was connected; nothing of
    // the process. (Stopping an app would pause the session properly, which is not the case here.)
    const db = await createTestDatabase();
    const env = parseEnv({});
    const streamKey = 'k'.repeat(43);
    const row = await db.prisma.session.create({
      data: {
        clientId: crypto.randomUUID(),
        status: 'ACTIVE',
        activeOn: instanceId(env),
        startedAt: new Date(),
        streamKeyHash: hashToken(streamKey),
      },
    });

    const app = await startTestApp({ db });
    expect(instanceId(app.deps.env)).toBe(instanceId(env));
    expect(await sessionState(app, row.id)).toMatchObject({ status: 'WAITING' });
    await eventually(async () => {
      const events = await db.prisma.eventLog.findMany({ where: { type: 'session.recovered' } });
      expect(events.map((e) => [e.severity, (e.details as { sessionId: string }).sessionId])).toEqual([
        ['WARN', row.id],
      ]);
    });
    const again = publisher(app, { sessionId: row.id, clientId: row.clientId, streamKey });
    await again.opened;
    await eventually(async () => expect((await sessionState(app, row.id)).status).toBe('ACTIVE'));
  });

  it('only the instance a session is active on can pause it (a late disconnect elsewhere cannot undo a takeover)', async () => {
    const db = await createTestDatabase();
    const row = await db.prisma.session.create({
      data: { clientId: crypto.randomUUID(), streamKeyHash: hashToken('k'.repeat(43)) },
    });
    expect(await transition(db.prisma, row.id, 'start', 'a')).toBe(true);
    // The publisher moved to b before a noticed its own had gone.
    expect(await transition(db.prisma, row.id, 'start', 'b')).toBe(true);
    expect(await transition(db.prisma, row.id, 'pause', 'a')).toBe(false);
    expect(await db.prisma.session.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({
      status: 'ACTIVE',
      activeOn: 'b',
    });
    expect(await transition(db.prisma, row.id, 'pause', 'b')).toBe(true);
    expect((await db.prisma.session.findUniqueOrThrow({ where: { id: row.id } })).status).toBe('WAITING');
  });

  it('on shared PostgreSQL, only this instance’s (and unattributed) ones; the embedded database: all', async () => {
    const db = await createTestDatabase();
    const app = await startTestApp({ db });
    const ids = [await newSession(app), await newSession(app), await newSession(app)].map((s) => s.sessionId);
    const [mine, theirs, unattributed] = ids as [string, string, string];
    await db.prisma.session.update({ where: { id: mine }, data: { status: 'ACTIVE', activeOn: 'me:4000' } });
    await db.prisma.session.update({ where: { id: theirs }, data: { status: 'ACTIVE', activeOn: 'other:4000' } });
    await db.prisma.session.update({ where: { id: unattributed }, data: { status: 'ACTIVE', activeOn: null } });

    expect((await recoverActiveSessions(db.prisma, 'me:4000', false)).sort()).toEqual([mine, unattributed].sort());
    expect((await db.prisma.session.findUniqueOrThrow({ where: { id: theirs } })).status).toBe('ACTIVE');
    expect(await recoverActiveSessions(db.prisma, 'me:4000', true)).toEqual([theirs]);
    const rows = await db.prisma.session.findMany({ where: { id: { in: ids } } });
    expect(rows.map((r) => [r.status, r.activeOn])).toEqual(ids.map(() => ['WAITING', null]));
  });

  it('names an instance by INSTANCE_ID, else by host name and port', () => {
    expect(instanceId(parseEnv({ INSTANCE_ID: 'edge-a', PORT: '4000' }))).toBe('edge-a');
    expect(instanceId(parseEnv({ PORT: '4100' }))).toMatch(/^.+:4100$/);
  });
});
