import type { HealthStatus, NodeKind, Severity } from '../../generated/prisma/enums.js';

/**
 * Every event StreamGate publishes, as one discriminated union on `type`. A new event is a new
 * member here: emitters get its `details` checked by the compiler, and the event log stores
 * `details` as JSON as they are.
 */

export type { Severity };

export const SEVERITIES = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const satisfies readonly Severity[];

/** True when `severity` is `min` or more severe (DEBUG < INFO < WARN < ERROR). */
export function atLeast(severity: Severity, min: Severity): boolean {
  return SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(min);
}

export const EVENT_SOURCES = ['nodes', 'sessions', 'proxies', 'routes', 'health', 'auth', 'system'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

export type HealthSubjectKind = 'NODE' | 'PROXY' | 'ROUTE';

interface EventOf<Type extends string, Source extends EventSource, Details> {
  type: Type;
  source: Source;
  severity: Severity;
  message: string;
  details: Details;
}

/** Who changed configuration (a token), recorded with the event. */
export interface Actor {
  id: string;
  name: string;
}

type NodeRef = { id: string; kind: NodeKind; name: string };
type ProxyRef = { id: string; domain: string };

export type AppEvent =
  // Configuration changes (always stored, with the actor).
  | EventOf<'node.created', 'nodes', NodeRef & { host: string; apiPort: number }>
  | EventOf<'node.updated', 'nodes', NodeRef & { changes: Record<string, unknown> }>
  | EventOf<'node.deleted', 'nodes', NodeRef>
  | EventOf<'proxy.created', 'proxies', ProxyRef & { destination: string; npmHostId: number | null }>
  | EventOf<'proxy.updated', 'proxies', ProxyRef & { changes: Record<string, unknown> }>
  | EventOf<'proxy.deleted', 'proxies', ProxyRef & { destination: string; npmHostId: number | null }>
  // Nginx Proxy Manager and StreamGate disagree and could not be put back in step by themselves.
  | EventOf<
      'proxy.npm_out_of_step',
      'proxies',
      { proxyId: string | null; domain: string; npmHostId: number | null; operation: string; error: string }
    >
  // A proxy host StreamGate created earlier but never recorded (its database write failed) was removed.
  | EventOf<'proxy.npm_orphan_removed', 'proxies', { domain: string; npmHostId: number }>
  | EventOf<
      'settings.updated',
      'system',
      // The fields whose value changed: new values in `changes`, the values they replaced in `previous`.
      { changes: Record<string, unknown>; previous: Record<string, unknown> }
    >
  // Health transitions (always stored).
  | EventOf<
      'health.changed',
      'health',
      {
        subjectKind: HealthSubjectKind;
        subjectId: string;
        name: string;
        from: HealthStatus;
        to: HealthStatus;
        latencyMs: number | null;
        detail: string | null;
      }
    >
  // Sessions.
  | EventOf<'session.created', 'sessions', { sessionId: string; clientId: string }>
  | EventOf<'session.ended', 'sessions', { sessionId: string; framesRelayed: number; bytesRelayed: number }>
  | EventOf<'session.publisher_connected', 'sessions', { sessionId: string }>
  | EventOf<'session.recovered', 'sessions', { sessionId: string; instance: string }>
  | EventOf<'session.publisher_disconnected', 'sessions', { sessionId: string; code: number }>
  | EventOf<'session.operator_connected', 'sessions', { sessionId: string; userId: string }>
  | EventOf<'session.operator_disconnected', 'sessions', { sessionId: string; userId: string; code: number }>
  | EventOf<
      'session.operator_dropped',
      'sessions',
      { sessionId: string; userId: string; bufferedBytes: number; limitBytes: number }
    >
  | EventOf<'session.frame_too_large', 'sessions', { sessionId: string; limitBytes: number }>
  | EventOf<
      'session.subscription_dropped',
      'sessions',
      { sessionId: string; subscriber: string; queuedBytes: number; queuedFrames: number; limitBytes: number }
    >
  // Routes.
  | EventOf<'route.excluded', 'routes', { alias: string; provider: string; origin: string; reason: string }>
  | EventOf<
      'routes.source_invalid',
      'routes',
      { provider: string; file: string | null; line: number | null; error: string }
    >
  | EventOf<'routes.source_removed', 'routes', { provider: string; removed: number; reason: string }>
  | EventOf<
      'routes.reloaded',
      'routes',
      { provider: string; added: number; removed: number; active: number; excluded: number }
    >
  // Housekeeping.
  | EventOf<'events.purged', 'system', { deleted: number; olderThan: string }>
  | EventOf<'health.write_failed', 'health', { pending: number; error: string }>
  | EventOf<'auth.token_generated', 'auth', { tokenId: string; name: string }>
  | EventOf<'auth.rate_limited', 'auth', { address: string; failuresPerMinute: number; blockedSeconds: number }>;

export type AppEventType = AppEvent['type'];

/**
 * Stored whatever EVENT_LOG_MIN_SEVERITY says: health transitions and configuration changes
 * (the audit trail of who changed what).
 */
export const ALWAYS_STORED: ReadonlySet<AppEventType> = new Set<AppEventType>([
  'node.created',
  'node.updated',
  'node.deleted',
  'proxy.created',
  'proxy.updated',
  'proxy.deleted',
  'settings.updated',
  'health.changed',
  'auth.token_generated',
]);

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
