import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'

/**
 * Identities nobody answers for: no owner at all, or every known owner (the identity's owner and
 * the `owns` edges into it) has departed. An owner ref the directory does not know is not judged
 * here (it may be a team from another system); a suspended person still counts as an owner.
 */
export const orphaned: PostureRule = {
  id: 'orphaned',
  severity: 'medium',
  title: 'Orphaned identity',
  description:
    'An identity (not deleted) with no owner, or whose owners have all departed (owner status in the directory).',
  remediation:
    'Assign an owner (the team of the departed owner, or whoever uses it); if nobody claims it, disable it.',
  thresholds: {},
  query: () => sql`
    select 'medium' as severity, 'identity' as subject_type, i.id as subject_id,
      i.ref as subject_ref, i.owner_ref, i.id as identity_id,
      jsonb_build_object('kind', i.kind,
        'reason', case when i.owner_ref is null and b.refs is null then 'no-owner'
          else 'owner-departed' end,
        'owner', i.owner_ref, 'ownerStatus', o.status,
        'departedAt', o.attributes ->> 'departedAt',
        'team', o.team_ref, 'otherOwners', coalesce(to_jsonb(b.refs), '[]'::jsonb)) as evidence
    from identity i
    left join owner o on o.ref = i.owner_ref and o.valid_to is null
    left join (
      select e.to_id, array_agg(e.from_ref order by e.from_ref) as refs,
        bool_or(ow.status is distinct from 'departed') as any_present
      from edge e
      left join owner ow on ow.id = e.from_id and ow.valid_to is null
      where e.valid_to is null and e.edge_type = 'owns' and e.from_type = 'owner'
        and e.to_type = 'identity'
      group by e.to_id
    ) b on b.to_id = i.id
    where i.valid_to is null and i.state <> 'deleted'
      and (i.owner_ref is null or o.status = 'departed')
      and not coalesce(b.any_present, false)`,
}
