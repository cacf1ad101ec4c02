/**
 * A time bound for one step, merged with the caller's signal: `signal` aborts when either the
 * bound passes (reason: a `TimeoutError` DOMException, and `timedOut` is true) or the caller
 * aborts (the caller's reason). `clear()` stops the timer and lets go of the caller's signal; call
 * it when the step ends so a long-lived caller signal does not collect listeners.
 *
 * A plain timer rather than `AbortSignal.timeout`: that one cannot be cancelled, and the pipeline
 * would leave a 10 s timer behind on every fast success.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  readonly timedOut: boolean;
  /** Milliseconds left before the bound, never negative. */
  remainingMs(): number;
  clear(): void;
}

export function deadline(ms: number, outer?: AbortSignal): Deadline {
  const controller = new AbortController();
  const endsAt = performance.now() + ms;
  let timedOut = false;
  const onOuterAbort = () => controller.abort(outer?.reason);
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError'));
  }, ms);
  if (outer?.aborted) onOuterAbort();
  else outer?.addEventListener('abort', onOuterAbort, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    remainingMs: () => Math.max(0, endsAt - performance.now()),
    clear() {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    },
  };
}

/** Milliseconds since `started` (a `performance.now()` reading), to two decimals. */
export function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}
