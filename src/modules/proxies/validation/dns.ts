import { lookup } from 'node:dns/promises';
import { describeError, errorCode } from '../../../lib/errors.js';
import { deadline } from './deadline.js';
import { HINTS } from './hints.js';
import type { StepOutcome } from './outcome.js';
import type { Destination } from './types.js';

/**
 * DNS: the addresses to connect to, in the resolver's order. An IP literal is its own answer. A
 * name goes through `getaddrinfo` (as every other program on the machine would resolve it:
 * /etc/hosts, search domains), bounded by `timeoutMs`. getaddrinfo cannot be cancelled: on a
 * timeout or an abort its answer is simply no longer waited for.
 */
export async function resolveStep(
  destination: Destination,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<StepOutcome<string[]>> {
  const { host } = destination;
  if (destination.isIp) return { ok: true, detail: `${host} is an IP address; no lookup needed`, value: [host] };

  const bound = deadline(timeoutMs, signal);
  try {
    const answers = await new Promise<{ address: string }[]>((resolve, reject) => {
      if (bound.signal.aborted) return reject(bound.signal.reason);
      bound.signal.addEventListener('abort', () => reject(bound.signal.reason), { once: true });
      lookup(host, { all: true }).then(resolve, reject);
    });
    const addresses = [...new Set(answers.map((a) => a.address))];
    if (addresses.length === 0) return { ok: false, detail: `${host} has no addresses`, hint: HINTS.dns };
    return { ok: true, detail: `${host} resolves to ${addresses.join(', ')}`, value: addresses };
  } catch (error) {
    const detail = bound.timedOut
      ? `no answer for ${host} within ${timeoutMs} ms (timeout)`
      : `cannot resolve ${host}: ${errorCode(error) ?? describeError(error)}`;
    return { ok: false, detail, hint: HINTS.dns };
  } finally {
    bound.clear();
  }
}
