import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'

/** Location types that mean "in source code or a file on disk" (what the secret scanner finds). */
export const codeLocationTypes = ['git', 'file'] as const

/**
 * Credentials found in a repository or a file (scanner findings, and any connector reporting such
 * a location). One finding per credential, with up to ten locations and who introduced it (the
 * scanner's `created` edge from the commit author).
 */
export const hardCodedSecret: PostureRule = {
  id: 'hard-coded-secret',
  severity: 'high',
  title: 'Hard-coded secret',
  description:
    'A credential (not revoked) found in source code (a git repository, in any commit) or in a file.',
  remediation:
    'Rotate the secret (it must be considered leaked: history keeps it), remove it from the code, and load it at run time from a secret store, or better, use a short-lived identity.',
  thresholds: {},
  query: () => sql`
    select 'high' as severity, 'credential' as subject_type, c.id as subject_id,
      c.ref as subject_ref, coalesce(i.owner_ref, cr.from_ref) as owner_ref, c.identity_id,
      jsonb_build_object('credentialType', c.credential_type, 'preview', c.preview,
        'fingerprint', c.fingerprint, 'identity', c.identity_ref, 'locationCount', l.n,
        'locations', to_jsonb(l.locations[1:10]), 'introducedBy', cr.from_ref,
        'scannerRule', c.attributes ->> 'rule') as evidence
    from (
      select credential_id, count(*) as n,
        array_agg(jsonb_build_object('type', location_type, 'repository', repository,
          'file', file, 'line', line, 'commit', commit, 'host', host)
          order by repository, file, line) as locations
      from credential_location
      where valid_to is null and location_type in ('git', 'file')
      group by credential_id
    ) l
    join credential c on c.id = l.credential_id and c.valid_to is null and c.state <> 'revoked'
    left join identity i on i.id = c.identity_id and i.valid_to is null
    left join lateral (
      select e.from_ref from edge e
      where e.to_id = c.id and e.edge_type = 'created' and e.from_type = 'owner'
        and e.valid_to is null
      order by e.from_ref limit 1
    ) cr on true`,
}
