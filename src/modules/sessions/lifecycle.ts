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
 * does not exist). Sets `finishedAt` on FINISHED and, the first time only, `startedAt` on ACTIVE.
 */
export async function transition(db: Db, id: string, name: Transition, now = new Date()): Promise<boolean> {
  const { from, to } = TRANSITIONS[name];
  const where = { id, status: { in: [...from] } };
  if (to === 'FINISHED') {
    const { count } = await db.session.updateMany({ where, data: { status: to, finishedAt: now } });
    return count === 1;
  }
  if (to === 'ACTIVE') {
    // One batch (one transaction): the first start also records when the session started.
    const [moved] = await db.$transaction([
      db.session.updateMany({ where, data: { status: to } }),
      db.session.updateMany({ where: { id, status: to, startedAt: null }, data: { startedAt: now } }),
    ]);
    return moved.count === 1;
  }
  const { count } = await db.session.updateMany({ where, data: { status: to } });
  return count === 1;
}
