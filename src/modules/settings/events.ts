import type { EventOf } from '../events/index.js';

declare module '../events/index.js' {
  interface EventCatalog {
    /** The fields whose value changed: new values in `changes`, the values they replaced in `previous`. */
    'settings.updated': EventOf<
      'settings.updated',
      'system',
      { changes: Record<string, unknown>; previous: Record<string, unknown> }
    >;
  }
}
