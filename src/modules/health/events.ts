import type { HealthStatus } from '../../generated/prisma/enums.js';
import type { EventOf, HealthSubjectKind } from '../events/index.js';

declare module '../events/index.js' {
  interface EventCatalog {
    'health.changed': EventOf<
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
    >;
    'health.write_failed': EventOf<'health.write_failed', 'health', { pending: number; error: string }>;
  }
}
