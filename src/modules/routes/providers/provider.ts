import type { ProviderName, RouteSpec } from '../types.js';

/** Where a provider hands its routes: the route service, which resolves every provider together. */
export interface RouteSink {
  /** The provider's whole current list, in its own order (which decides between its own duplicates). */
  update(specs: readonly RouteSpec[]): void;
  /** The source cannot be read as a whole (a malformed routes file): its previous routes stay. */
  failed(error: unknown): void;
  /** The source is gone (the routes file was removed): its routes go, with `reason` in the event. */
  gone(reason: string): void;
}

/**
 * A source of routes. It loads its routes once in `start` (resolving when they are in the sink)
 * and from then on tells the sink whenever they change; it never needs to know about the others.
 */
export interface RouteProvider {
  readonly name: ProviderName;
  start(sink: RouteSink): Promise<void>;
  /** Stops following the source; no sink call comes after it resolves. */
  close(): Promise<void>;
}

/** The source cannot be read as a whole: nothing of it is used, the previous routes stay. */
export class RouteSourceError extends Error {
  override name = 'RouteSourceError';
  constructor(
    message: string,
    /** Where, when known: the file and the 1-based line. */
    readonly location: { file?: string; line?: number } = {},
  ) {
    super(message);
  }
}
