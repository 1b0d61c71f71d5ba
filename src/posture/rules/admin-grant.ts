import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'

/** Admin and wildcard grants every installation forbids; `forbiddenGrants` adds to them. */
export const defaultForbiddenGrants = ['*', '*:*', 'AdministratorAccess', 'cluster-admin'] as const

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * Identities holding an admin or wildcard grant: an action `*` or `*:*` (or another forbidden
 * action), a grant on every resource (`*`), or a grant through a forbidden policy or role
 * (`…/AdministratorAccess`, `clusterrolebinding/cluster-admin`). One finding per identity, with
 * the offending grants.
 */
export const adminGrant: PostureRule = {
  id: 'admin-grant',
  severity: 'high',
  title: 'Admin or wildcard grant',
  description:
    'A machine identity holds an administrator or wildcard grant: action `*` or `*:*`, resource `*`, or a policy/role such as AdministratorAccess or cluster-admin (and any forbiddenGrants of the policy).',
  remediation:
    'Replace the grant with the actions and resources the identity uses (see the unused-permissions finding for a proposal from observed usage).',
  thresholds: {},
  query: (ctx) => {
    const names = [...new Set([...defaultForbiddenGrants, ...(ctx.config.forbiddenGrants ?? [])])]
    // A policy or role matches by its whole name or its last path segment.
    const viaPattern = `(^|/)(${names.map(escapeRegex).join('|')})$`
    const list = JSON.stringify(names)
    return sql`
    select 'high' as severity, 'identity' as subject_type, i.id as subject_id,
      i.ref as subject_ref, i.owner_ref, i.id as identity_id,
      jsonb_build_object('kind', i.kind, 'grantCount', x.n, 'grants', to_jsonb(x.grants[1:20]))
        as evidence
    from (
      select g.identity_id, count(*) as n,
        array_agg(jsonb_build_object('resource', g.resource_ref, 'actions', to_jsonb(g.actions),
          'via', g.via) order by g.resource_ref, g.via) as grants
      from "grant" g
      where g.valid_to is null and (
        g.resource_ref = '*'
        or g.actions && array(select jsonb_array_elements_text(${list}::jsonb))
        or coalesce(g.via, '') ~ ${viaPattern})
      group by g.identity_id
    ) x
    join identity i on i.id = x.identity_id and i.valid_to is null and i.state <> 'deleted'`
  },
}
