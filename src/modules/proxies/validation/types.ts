import type { OutboundPolicy } from '../../../lib/outbound.js';
/** The validation pipeline's vocabulary (contract types ValidationStep / ValidationResult). */

export type ValidationStepName = 'SYNTAX' | 'DNS' | 'TCP' | 'HTTP';

export interface ValidationStep {
  name: ValidationStepName;
  ok: boolean;
  /** Wall time of this step alone, in milliseconds (two decimals). */
  durationMs: number;
  /** What the step found (addresses, status, redirect target) or what went wrong. */
  detail: string | null;
  /** On failure, what to do about it (the exact texts of hints.ts); null when ok. */
  hint: string | null;
}

export interface ValidationResult {
  ok: boolean;
  /** The steps run, in order; the pipeline stops at the first failure, so later steps are absent. */
  steps: ValidationStep[];
}

/** A destination that passed SYNTAX: what the later steps (and the proxy's health check) use. */
export interface Destination {
  /** Normalised absolute URL (WHATWG serialisation), as stored on a proxy. */
  url: string;
  scheme: 'http' | 'https';
  /** Host name or IP literal, without IPv6 brackets, lower-cased. */
  host: string;
  /** Explicit port, or the scheme's default (80/443). */
  port: number;
  /** True when `host` is an IPv4/IPv6 literal (DNS passes at once). */
  isIp: boolean;
}

export interface ValidationTimeouts {
  /** DNS lookup bound (default 5000). */
  dnsMs: number;
  /** TCP connect bound (default 5000, per the issue). */
  tcpMs: number;
  /** HTTP GET bound, until the response headers (default 10000, per the issue). */
  httpMs: number;
}

export interface ValidationOptions {
  /** Aborts whatever step is running (client went away, server stopping). */
  signal?: AbortSignal;
  /** Tests shrink these; production uses the defaults. */
  timeouts?: Partial<ValidationTimeouts>;
  /** Where connections may go: a refused address fails the TCP step, before any packet is sent. */
  policy?: Pick<OutboundPolicy, 'checkLiteral' | 'lookup'>;
}
