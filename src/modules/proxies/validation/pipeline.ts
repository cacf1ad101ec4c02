import { elapsedMs } from './deadline.js';
import { resolveStep } from './dns.js';
import { HINTS } from './hints.js';
import { httpProbe } from './http-probe.js';
import type { StepOutcome } from './outcome.js';
import { describeDestination, parseDestination } from './syntax.js';
import { connectStep } from './tcp.js';
import type {
  Destination,
  ValidationOptions,
  ValidationResult,
  ValidationStep,
  ValidationStepName,
  ValidationTimeouts,
} from './types.js';

/** The bounds: 5 s to connect, 10 s for the HTTP answer; DNS gets the same as TCP. */
export const DEFAULT_TIMEOUTS: ValidationTimeouts = { dnsMs: 5_000, tcpMs: 5_000, httpMs: 10_000 };

/**
 * Runs SYNTAX → DNS → TCP → HTTP, yielding each step as it completes; stops after the first failure.
 *
 * The HTTP step connects to the address the TCP step reached (the name still goes in the Host
 * header and TLS SNI): a name with several addresses is then judged by one server, the one the TCP
 * step vouched for. Aborting `options.signal` ends the running step at once and the generator with
 * it, without yielding that step (so `validateDestination` reports `ok: false` with the steps done).
 */
export async function* validationSteps(raw: string, options: ValidationOptions = {}): AsyncGenerator<ValidationStep> {
  const { signal } = options;
  const timeouts = withDefaults(options.timeouts);
  if (signal?.aborted) return;

  const syntax = await timed('SYNTAX', async (): Promise<StepOutcome<Destination>> => {
    const parsed = parseDestination(raw);
    if (!parsed.ok) return { ok: false, detail: parsed.detail, hint: HINTS.syntax };
    return { ok: true, detail: describeDestination(parsed.destination), value: parsed.destination };
  });
  yield syntax.step;
  // Each `yield` hands control to the consumer, which may abort before asking for the next step.
  if (!syntax.outcome.ok || signal?.aborted) return;
  const destination = syntax.outcome.value;

  const dns = await timed('DNS', () => resolveStep(destination, timeouts.dnsMs, signal));
  if (signal?.aborted) return;
  yield dns.step;
  if (!dns.outcome.ok || signal?.aborted) return;
  const addresses = dns.outcome.value;

  const tcp = await timed('TCP', () =>
    connectStep(addresses, destination.port, timeouts.tcpMs, signal, options.policy),
  );
  if (signal?.aborted) return;
  yield tcp.step;
  if (!tcp.outcome.ok || signal?.aborted) return;

  const address = tcp.outcome.value;
  const http = await timed('HTTP', async (): Promise<StepOutcome<null>> => {
    const probe = await httpProbe(destination, { signal, timeoutMs: timeouts.httpMs, addresses: [address] });
    return probe.ok
      ? { ok: true, detail: probe.detail, value: null }
      : { ok: false, detail: probe.detail, hint: probe.hint ?? '' }; // null only for an abort, never yielded
  });
  if (signal?.aborted) return;
  yield http.step;
}

/** The whole pipeline at once (validateProxy, createProxy): the same generator, collected. */
export async function validateDestination(raw: string, options: ValidationOptions = {}): Promise<ValidationResult> {
  const steps: ValidationStep[] = [];
  for await (const step of validationSteps(raw, options)) steps.push(step);
  return { ok: steps.length === 4 && steps.every((s) => s.ok), steps };
}

/** The defaults, overridden by the caller's values that are actually set (an explicit `undefined` keeps the default). */
function withDefaults(overrides: Partial<ValidationTimeouts> = {}): ValidationTimeouts {
  const pick = (key: keyof ValidationTimeouts) => overrides[key] ?? DEFAULT_TIMEOUTS[key];
  return { dnsMs: pick('dnsMs'), tcpMs: pick('tcpMs'), httpMs: pick('httpMs') };
}

/** Runs one step and reports it with its own wall time. */
async function timed<T>(
  name: ValidationStepName,
  run: () => Promise<StepOutcome<T>>,
): Promise<{ step: ValidationStep; outcome: StepOutcome<T> }> {
  const started = performance.now();
  const outcome = await run();
  const step: ValidationStep = {
    name,
    ok: outcome.ok,
    durationMs: elapsedMs(started),
    detail: outcome.detail,
    hint: outcome.ok ? null : outcome.hint,
  };
  return { step, outcome };
}
