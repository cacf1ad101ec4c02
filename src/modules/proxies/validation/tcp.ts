import { connect, isIP, type LookupFunction } from 'node:net';
import { describeError, errorCode } from '../../../lib/errors.js';
import type { OutboundPolicy } from '../../../lib/outbound.js';
import { classifyError, endpoint } from './failures.js';
import { type FailureKind, hintFor } from './hints.js';
import type { StepOutcome } from './outcome.js';

/** One connect attempt: connected, or how it failed. */
type Attempt = { ok: true } | { ok: false; kind: FailureKind | 'aborted'; detail: string };

/**
 * When several addresses fail, the hint follows the most telling failure: a refusal proves a host
 * answered (the port is the problem), a timeout that something swallowed the packets; "unreachable"
 * is what is left.
 */
const SEVERITY: FailureKind[] = ['refused', 'timeout', 'unreachable', 'forbidden'];

/**
 * TCP: connect to `addresses` in order and close at once; the first that connects passes and is
 * the one the HTTP step will use. `timeoutMs` bounds the whole step; each address gets an equal
 * share of what is left, so one black-holed address cannot starve the next. A refusal or a routing
 * error comes back as soon as the kernel reports it.
 */
export async function connectStep(
  addresses: string[],
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
  policy?: Pick<OutboundPolicy, 'checkLiteral' | 'lookup'>,
): Promise<StepOutcome<string>> {
  const endsAt = performance.now() + timeoutMs;
  const failures: { kind: FailureKind; detail: string }[] = [];
  for (const [index, address] of addresses.entries()) {
    // An IP is checked here, before any packet; a name (route upstreams) when it resolves.
    const refused = policy?.checkLiteral(address, port);
    if (refused) {
      failures.push({
        kind: 'forbidden',
        detail: `${endpoint(address, port)} refused by the outbound address policy: ${refused}`,
      });
      continue;
    }
    const budget = (endsAt - performance.now()) / (addresses.length - index);
    const lookup = policy && !isIP(address) ? policy.lookup(port) : undefined;
    const attempt = await tryConnect(address, port, Math.max(1, Math.round(budget)), signal, lookup);
    if (attempt.ok) {
      const before = failures.length > 0 ? ` (after ${failures.map((f) => f.detail).join('; ')})` : '';
      return { ok: true, detail: `connected to ${endpoint(address, port)}${before}`, value: address };
    }
    if (attempt.kind === 'aborted') return { ok: false, detail: attempt.detail, hint: '' };
    failures.push({ kind: attempt.kind, detail: attempt.detail });
  }
  const kind = SEVERITY.find((k) => failures.some((f) => f.kind === k)) ?? 'unreachable';
  return { ok: false, detail: failures.map((f) => f.detail).join('; '), hint: hintFor(kind, port) };
}

function tryConnect(
  address: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
  lookup?: LookupFunction,
): Promise<Attempt> {
  const target = endpoint(address, port);
  if (signal?.aborted) return Promise.resolve({ ok: false, kind: 'aborted', detail: `${target}: aborted` });
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, ...(lookup ? { lookup } : {}) });
    const finish = (attempt: Attempt) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(attempt);
    };
    const onAbort = () => finish({ ok: false, kind: 'aborted', detail: `${target}: aborted` });
    const timer = setTimeout(
      () => finish({ ok: false, kind: 'timeout', detail: `no connection to ${target} within ${timeoutMs} ms` }),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish({ ok: true }));
    socket.on('error', (error) => {
      const kind = classifyError(error);
      // Only connect-time errors reach here; of the HTTP-level kinds none can happen before a connection.
      const tcpKind: FailureKind =
        kind === 'refused' || kind === 'timeout' || kind === 'forbidden' ? kind : 'unreachable';
      const what =
        {
          refused: 'refused the connection',
          timeout: 'timed out',
          forbidden: 'is refused by the outbound address policy',
        }[tcpKind as string] ?? 'is unreachable';
      finish({ ok: false, kind: tcpKind, detail: `${target} ${what} (${errorCode(error) ?? describeError(error)})` });
    });
  });
}
