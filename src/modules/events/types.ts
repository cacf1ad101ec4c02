import type { Severity } from '../../generated/prisma/enums.js';
import type { EventCatalog } from './index.js';

export type { Severity };

export const SEVERITIES = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const satisfies readonly Severity[];

/** True when `severity` is `min` or more severe (DEBUG < INFO < WARN < ERROR). */
export function atLeast(severity: Severity, min: Severity): boolean {
  return SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(min);
}

export const EVENT_SOURCES = ['nodes', 'sessions', 'proxies', 'routes', 'health', 'auth', 'system'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

export type HealthSubjectKind = 'NODE' | 'PROXY' | 'ROUTE';

/** One kind of event: its type, source and `details`. */
export interface EventOf<Type extends string, Source extends EventSource, Details> {
  type: Type;
  source: Source;
  severity: Severity;
  message: string;
  details: Details;
  /**
   * Stored whatever EVENT_LOG_MIN_SEVERITY says: configuration changes (the audit trail of who
   * changed what) and health transitions. Not part of the entry.
   */
  alwaysStored?: true;
}

/** Who changed configuration (a token), recorded with the event. */
export interface Actor {
  id: string;
  name: string;
}

/** Any event of the catalog, as one discriminated union on `type`. */
export type AppEvent = EventCatalog[keyof EventCatalog];

export type AppEventType = AppEvent['type'];

/** An event as logged and streamed: the event plus when, who, and where it sits in the log. */
export interface EventLogEntry {
  /** The stored row's sequence number as a string, or `live-…` for an entry that was not stored. */
  id: string;
  severity: Severity;
  source: string;
  type: string;
  message: string;
  details: unknown;
  actor: Actor | null;
  createdAt: Date;
  /**
   * Position in the stored log: the seq of this entry, or for an unstored one, of the last stored
   * entry before it. `events(after: <catch-up cursor of this position>)` returns what came later.
   */
  position: bigint;
}
