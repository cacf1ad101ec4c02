import diagnostics from 'node:diagnostics_channel';

/**
 * What the monitor does, for whoever listens (the benchmark; a metrics exporter later): Node's
 * diagnostics channels cost nothing while nobody subscribes, and need no handle on the monitor.
 */

/** Every scheduled check as it ends: `{ kind, id, driftMs, durationMs, status }`. */
export const checkChannel = diagnostics.channel('streamgate:health:check');

/** Every batch write: `{ kind, rows, ok, ms? }`. */
export const writeChannel = diagnostics.channel('streamgate:health:write');

export interface CheckMessage {
  kind: string;
  id: string;
  /** Start of the check minus the time it was due (scheduling drift), ms. */
  driftMs: number;
  durationMs: number;
  status: string;
}

export interface WriteMessage {
  kind: string;
  rows: number;
  ok: boolean;
  ms?: number;
}
