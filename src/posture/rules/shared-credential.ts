import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'

/**
 * One secret in several places: a fingerprint held by more than one identity or credential
 * record, or found in more than one location. One finding per fingerprint.
 */
export const sharedCredential: PostureRule = {
  id: 'shared-credential',
  severity: 'high',
  title: 'Shared credential',
  description:
    'The same secret (one fingerprint) is used by more than one identity, recorded as more than one credential, or found in more than one place.',
  remediation:
    'Issue one credential per identity and per consumer, rotate the shared one, and remove the copies; each copy widens who can use it.',
  thresholds: {},
  query: () => sql`
    with fp as (
      select c.fingerprint, count(*) as credentials,
        count(distinct c.identity_id) as identities,
        (array_agg(c.id order by c.ref))[1] as first_id,
        array_agg(c.ref order by c.ref) as refs,
        array_agg(distinct c.identity_ref) filter (where c.identity_ref is not null) as identity_refs,
        (array_agg(c.identity_id order by c.ref) filter (where c.identity_id is not null))[1]
          as identity_id
      from credential c
      where c.valid_to is null and c.fingerprint is not null and c.state <> 'revoked'
      group by c.fingerprint
    ),
    places as (
      select c.fingerprint, count(*) as n,
        array_agg(jsonb_build_object('type', l.location_type, 'repository', l.repository,
          'file', l.file, 'host', l.host, 'path', l.path) order by l.ref) as locations
      from credential_location l
      join credential c on c.id = l.credential_id and c.valid_to is null
        and c.fingerprint is not null and c.state <> 'revoked'
      where l.valid_to is null
      group by c.fingerprint
    )
    select 'high' as severity, 'credential' as subject_type, fp.first_id as subject_id,
      'fingerprint:' || fp.fingerprint as subject_ref, i.owner_ref, fp.identity_id,
      jsonb_build_object('fingerprint', fp.fingerprint, 'credentialCount', fp.credentials,
        'identityCount', fp.identities, 'placeCount', coalesce(p.n, 0),
        'credentials', to_jsonb(fp.refs[1:20]),
        'identities', coalesce(to_jsonb(fp.identity_refs[1:20]), '[]'::jsonb),
        'locations', coalesce(to_jsonb(p.locations[1:10]), '[]'::jsonb)) as evidence
    from fp
    left join places p on p.fingerprint = fp.fingerprint
    left join identity i on i.id = fp.identity_id and i.valid_to is null
    where fp.identities > 1 or fp.credentials > 1 or coalesce(p.n, 0) > 1`,
}
