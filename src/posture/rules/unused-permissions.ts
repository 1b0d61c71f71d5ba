import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'
import { daysBefore } from './sql.js'

/**
 * Granted but unused: for each identity (older than the window), the grants with actions never
 * used on their resource during the last N days, and wildcard grants (whose breadth is never
 * used in full). The least-privilege proposal is what the identity did use in the window, per
 * resource: the grants it needs and nothing more. A granted action `x:*` covers used `x:…`.
 */
export const unusedPermissions: PostureRule = {
  id: 'unused-permissions',
  severity: 'medium',
  title: 'Granted but unused permissions',
  description:
    'Actions granted to an identity that it has not used during the last N days (wildcard grants count as unused breadth), with a least-privilege proposal computed from observed usage.',
  remediation:
    'Replace the grants with the proposal (the resources and actions actually used in the window); remove grants with no use at all.',
  thresholds: { days: { default: 90, description: 'observation window in days' } },
  query: (ctx) => {
    const since = daysBefore(ctx.now, ctx.threshold('days'))
    const covers = sql`(a = '*' or a = '*:*' or a = u.action
      or (right(a, 1) = '*' and u.action like left(a, -1) || '%'))`
    return sql`
    with u as (
      select identity_id, resource_ref, action from usage
      where hour >= ${since} group by identity_id, resource_ref, action
    ),
    g as (
      select g.id, g.identity_id, g.resource_ref, g.actions, g.via
      from "grant" g
      join identity i on i.id = g.identity_id and i.valid_to is null and i.state = 'active'
      where g.valid_to is null and coalesce(i.created_at, g.valid_from) < ${since}
    ),
    gu as (
      select g.id, g.identity_id, g.resource_ref, g.actions, g.via,
        coalesce(array_agg(distinct u.action order by u.action)
          filter (where u.action is not null), '{}') as used
      from g
      left join u on u.identity_id = g.identity_id
        and (g.resource_ref = '*' or u.resource_ref = g.resource_ref)
        and exists (select 1 from unnest(g.actions) a where ${covers})
      group by g.id, g.identity_id, g.resource_ref, g.actions, g.via
    ),
    flagged as (
      select gu.*,
        array(select a from unnest(gu.actions) a
          where right(a, 1) <> '*' and not (a = any(gu.used)) order by a) as unused,
        (gu.resource_ref = '*' or exists (select 1 from unnest(gu.actions) a where right(a, 1) = '*'))
          as wildcard
      from gu
    ),
    per_identity as (
      select identity_id, count(*) as n,
        array_agg(jsonb_build_object('resource', resource_ref, 'via', via,
          'granted', to_jsonb(actions), 'used', to_jsonb(used), 'unused', to_jsonb(unused),
          'wildcard', wildcard) order by resource_ref, via) as grants
      from flagged where cardinality(unused) > 0 or wildcard
      group by identity_id
    ),
    proposal as (
      select p.identity_id,
        jsonb_agg(jsonb_build_object('resource', p.resource_ref, 'actions', to_jsonb(p.actions))
          order by p.resource_ref) as proposal
      from (
        select u.identity_id, u.resource_ref, array_agg(u.action order by u.action) as actions
        from u join per_identity pi on pi.identity_id = u.identity_id
        group by u.identity_id, u.resource_ref
      ) p
      group by p.identity_id
    )
    select 'medium' as severity, 'identity' as subject_type, i.id as subject_id,
      i.ref as subject_ref, i.owner_ref, i.id as identity_id,
      jsonb_build_object('kind', i.kind, 'windowDays', ${ctx.threshold('days')}::int,
        'grantCount', pi.n, 'grants', to_jsonb(pi.grants[1:20]),
        'proposal', coalesce(pr.proposal, '[]'::jsonb)) as evidence
    from per_identity pi
    join identity i on i.id = pi.identity_id and i.valid_to is null
    left join proposal pr on pr.identity_id = pi.identity_id`
  },
}
