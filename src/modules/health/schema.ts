import { builder } from '../../graphql/builder.js';
import { HealthStatusEnum } from '../../graphql/common.js';
import { unlessOverflow } from '../../graphql/overflow.js';
import type { HealthStreamItem } from './hub.js';
import { HEALTH_SUBJECT_KINDS, type HealthChange } from './types.js';

const HealthSubjectKindEnum = builder.enumType('HealthSubjectKind', { values: HEALTH_SUBJECT_KINDS });

const HealthChangeType = builder.objectRef<HealthChange>('HealthChange').implement({
  description: 'A health transition (after the anti-flap thresholds); steady state produces none.',
  fields: (t) => ({
    subjectKind: t.field({ type: HealthSubjectKindEnum, resolve: (c) => c.subjectKind }),
    subjectId: t.id({ resolve: (c) => c.subjectId }),
    name: t.string({ resolve: (c) => c.name }),
    from: t.field({ type: HealthStatusEnum, resolve: (c) => c.from }),
    to: t.field({ type: HealthStatusEnum, resolve: (c) => c.to }),
    at: t.field({ type: 'DateTime', resolve: (c) => c.at }),
    latencyMs: t.float({ nullable: true, resolve: (c) => c.latencyMs }),
    detail: t.string({ nullable: true, resolve: (c) => c.detail }),
  }),
});

builder.subscriptionField('healthChanged', (t) =>
  t.field({
    type: HealthChangeType,
    description:
      'Health transitions as they happen, of the given subject kinds (all when omitted). A subscriber that falls ' +
      '1,000 changes behind gets one SUBSCRIBER_TOO_SLOW error and its stream ends: re-read, then subscribe again.',
    args: { subjectKinds: t.arg({ type: [HealthSubjectKindEnum] }) },
    authScopes: { viewer: true },
    subscribe: (_root, { subjectKinds }, ctx) => ctx.health.subscribe(subjectKinds),
    resolve: (item: HealthStreamItem) =>
      unlessOverflow(item, 'healthChanged', 're-read the state, then subscribe again'),
  }),
);
