import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'
import { daysBefore, daysSince } from './sql.js'

/**
 * Active identities with no use for N days: neither `last_used_at` nor any usage row is newer. An
 * identity younger than N days is not judged yet.
 */
export const identityUnused: PostureRule = {
  id: 'identity-unused',
  severity: 'low',
  title: 'Identity unused',
  description:
    'An active identity with no recorded use (last_used_at, observed usage) for N days, or never used, and older than N days.',
  remediation:
    'Confirm with the owner, then disable it; delete it after a grace period. Unused identities are attack surface with no benefit.',
  thresholds: { days: { default: 90, description: 'days without use' } },
  query: (ctx) => {
    const cutoff = daysBefore(ctx.now, ctx.threshold('days'))
    const last = sql`greatest(i.last_used_at, u.last_hour)`
    return sql`
    select 'low' as severity, 'identity' as subject_type, i.id as subject_id,
      i.ref as subject_ref, i.owner_ref, i.id as identity_id,
      jsonb_build_object('kind', i.kind, 'lastUsedAt', ${last}, 'neverUsed', ${last} is null,
        'unusedDays', ${daysSince(sql`coalesce(${last}, i.created_at, i.valid_from)`, ctx.now)},
        'createdAt', i.created_at, 'thresholdDays', ${ctx.threshold('days')}::int) as evidence
    from identity i
    left join (
      select identity_id, max(hour) + interval '1 hour' as last_hour from usage group by identity_id
    ) u on u.identity_id = i.id
    where i.valid_to is null and i.state = 'active'
      and coalesce(i.created_at, i.valid_from) < ${cutoff}
      and (${last} is null or ${last} < ${cutoff})`
  },
}
