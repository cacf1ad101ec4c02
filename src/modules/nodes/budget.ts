import { appError } from '../../lib/errors.js';
import type { AnswerMeter } from './clients/base.js';

/**
 * What one GraphQL operation may ask of node APIs: a number of calls and a total of answer
 * bytes. Without it one query (`streamers(first: 100) { edges { node { streams traffic } } }` over
 * nodes that each answer 4 MiB) makes hundreds of calls and holds hundreds of MB. Past the budget,
 * each field that did not fit is a BUDGET_EXCEEDED error; the rest of the answer stands. (An
 * operation whose worst case is past the call budget does not even start: src/server/graphql/node-call-cost.ts.)
 */
export class NodeCallBudget implements AnswerMeter {
  private callsLeft: number;
  private bytesLeft: number;

  constructor(
    readonly calls: number,
    readonly bytes: number,
  ) {
    this.callsLeft = calls;
    this.bytesLeft = bytes;
  }

  /** Takes one call; throws BUDGET_EXCEEDED when none is left. */
  take(): void {
    if (this.bytesLeft <= 0) throw this.overflow();
    if (this.callsLeft <= 0) {
      throw appError(
        'BUDGET_EXCEEDED',
        `this operation has made its ${this.calls} node API calls (NODE_CALLS_PER_OPERATION); ask for fewer nodes or fields`,
        { limit: this.calls },
      );
    }
    this.callsLeft--;
  }

  /**
   * Counts answer bytes as they arrive, across the operation's concurrent calls, so what is held
   * in memory never passes the budget by more than a chunk per call. False once they do not fit:
   * the budget is then spent, and later calls fail as well.
   */
  consume(bytes: number): boolean {
    if (bytes > this.bytesLeft) {
      this.bytesLeft = 0;
      return false;
    }
    this.bytesLeft -= bytes;
    return true;
  }

  /** The error for an answer that did not fit in what was left. */
  overflow(): Error {
    return appError(
      'BUDGET_EXCEEDED',
      `node answers in this operation passed ${this.bytes} bytes (NODE_BYTES_PER_OPERATION); ask for fewer nodes or fields`,
      { limit: this.bytes },
    );
  }
}
