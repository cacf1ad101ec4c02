import type { Db } from '../../db/client.js';
import type { SessionStatus } from '../../generated/prisma/enums.js';

/**
 * The session state machine, as data. Every status change in the code goes through `transition`,
 * which is one conditional UPDATE (`WHERE status IN from`): a transition that is not in this table
 * cannot be written, and two racing writers cannot both win. The database adds a trigger that
 * rejects any change out of FINISHED, whatever writes it.
 *
 *   WAITING ──start──▶ ACTIVE ──pause──▶ WAITING        (publisher connects / goes away)
 *   WAITING | ACTIVE ──finish──▶ FINISHED               (endSession; final)
 */
export const TRANSITIONS = {
  /** The publisher connected. From ACTIVE too: a process killed mid-stream leaves ACTIVE behind. */
  start: { from: ['WAITING', 'ACTIVE'], to: 'ACTIVE' },
  /** The publisher disconnected (or the server stopped) before the session ended: back to waiting for it. */
  pause: { from: ['ACTIVE'], to: 'WAITING' },
  /** endSession. */
  finish: { from: ['WAITING', 'ACTIVE'], to: 'FINISHED' },
} as const satisfies Record<string, { from: readonly SessionStatus[]; to: SessionStatus }>;

export type Transition = keyof typeof TRANSITIONS;

/**
 * Applies a transition when the session is in one of its `from` states; false when it is not (or
 * does not exist). Sets `finishedAt` on FINISHED and, the first time only, `startedAt` on ACTIVE;
 * ACTIVE records the instance it is active on (`activeOn`), every other state clears it, and only
 * that instance can pause it.
 */
export async function transition(
  db: Db,
  id: string,
  name: Transition,
  instance: string,
  now = new Date(),
): Promise<boolean> {
  const { from, to } = TRANSITIONS[name];
  const where = { id, status: { in: [...from] } };
  if (to === 'FINISHED') {
    const { count } = await db.session.updateMany({ where, data: { status: to, finishedAt: now, activeOn: null } });
    return count === 1;
  }
  if (to === 'ACTIVE') {
    // One batch (one transaction): the first start also records when the session started.
    const [moved] = await db.$transaction([
      db.session.updateMany({ where, data: { status: to, activeOn: instance } }),
      db.session.updateMany({ where: { id, status: to, startedAt: null }, data: { startedAt: now } }),
    ]);
    return moved.count === 1;
  }
  // Pausing is the publisher's instance's business: a late pause from an instance whose publisher
  // has gone must not send back to WAITING a session another instance's publisher has taken over.
  const { count } = await db.session.updateMany({
    where: { ...where, activeOn: instance },
    data: { status: to, activeOn: null },
  });
  return count === 1;
}

/**
 * At start: the sessions this instance left ACTIVE when it was killed (its publishers are gone
 * with it) go back to WAITING. `allActive` for the embedded database, which only one process
 * ever opens: every ACTIVE session there is this process's, whatever instance name it had.
 * Returns the ids put back.
 */
export async function recoverActiveSessions(db: Db, instance: string, allActive: boolean): Promise<string[]> {
  const where = allActive
    ? { status: 'ACTIVE' as const }
    : { status: 'ACTIVE' as const, OR: [{ activeOn: instance }, { activeOn: null }] };
  // One statement (UPDATE … RETURNING): nothing can start between finding and resetting.
  const reset = await db.session.updateManyAndReturn({
    where,
    data: { status: 'WAITING', activeOn: null },
    select: { id: true },
  });
  return reset.map((s) => s.id);
}
