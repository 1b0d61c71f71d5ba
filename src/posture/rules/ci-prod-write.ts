import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'

/** Action names that change things: any of these words, or a wildcard. */
export const writeActionPattern =
  '(^\\*|\\*$|write|put|post|create|update|delete|remove|modify|patch|apply|deploy|push|admin|manage|upload|send|sign|exec|invoke)'

/**
 * CI/CD pipelines with write access to production: grants held by a `ci_pipeline` identity on a
 * resource whose environment is prod/production (or on every resource, `*`), with a write-ish
 * action. One finding per pipeline.
 */
export const ciProdWrite: PostureRule = {
  id: 'ci-prod-write',
  severity: 'high',
  title: 'CI/CD identity with production write access',
  description:
    'A CI/CD pipeline identity holds write-ish actions (write, put, create, update, delete, deploy, push, admin, wildcard…) on production resources.',
  remediation:
    'Give pipelines short-lived, narrowly scoped credentials through OIDC token exchange, restrict production writes to protected branches and environments, and separate build from deploy identities.',
  thresholds: {},
  query: () => sql`
    select 'high' as severity, 'identity' as subject_type, i.id as subject_id,
      i.ref as subject_ref, i.owner_ref, i.id as identity_id,
      jsonb_build_object('grantCount', count(*), 'grants', to_jsonb((array_agg(
        jsonb_build_object('resource', g.resource_ref, 'environment', r.environment,
          'actions', to_jsonb(array(select a from unnest(g.actions) a
            where a ~* ${writeActionPattern})), 'via', g.via)
        order by g.resource_ref, g.via))[1:20])) as evidence
    from "grant" g
    join identity i on i.id = g.identity_id and i.valid_to is null and i.kind = 'ci_pipeline'
      and i.state = 'active'
    left join resource r on r.id = g.resource_id and r.valid_to is null
    where g.valid_to is null
      and (lower(r.environment) in ('prod', 'production') or g.resource_ref = '*')
      and exists (select 1 from unnest(g.actions) a where a ~* ${writeActionPattern})
    group by i.id, i.ref, i.owner_ref`,
}
