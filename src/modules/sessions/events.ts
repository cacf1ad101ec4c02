import type { EventOf } from '../events/index.js';

declare module '../events/index.js' {
  interface EventCatalog {
    'session.created': EventOf<'session.created', 'sessions', { sessionId: string; clientId: string }>;
    'session.ended': EventOf<
      'session.ended',
      'sessions',
      { sessionId: string; framesRelayed: number; bytesRelayed: number }
    >;
    'session.publisher_connected': EventOf<'session.publisher_connected', 'sessions', { sessionId: string }>;
    'session.recovered': EventOf<'session.recovered', 'sessions', { sessionId: string; instance: string }>;
    'session.publisher_disconnected': EventOf<
      'session.publisher_disconnected',
      'sessions',
      { sessionId: string; code: number }
    >;
    'session.operator_connected': EventOf<
      'session.operator_connected',
      'sessions',
      { sessionId: string; userId: string }
    >;
    'session.operator_disconnected': EventOf<
      'session.operator_disconnected',
      'sessions',
      { sessionId: string; userId: string; code: number }
    >;
    'session.operator_dropped': EventOf<
      'session.operator_dropped',
      'sessions',
      { sessionId: string; userId: string; bufferedBytes: number; limitBytes: number }
    >;
    'session.frame_too_large': EventOf<
      'session.frame_too_large',
      'sessions',
      { sessionId: string; limitBytes: number }
    >;
    'session.subscription_dropped': EventOf<
      'session.subscription_dropped',
      'sessions',
      { sessionId: string; subscriber: string; queuedBytes: number; queuedFrames: number; limitBytes: number }
    >;
  }
}
