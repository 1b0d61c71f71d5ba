import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'
import { at, daysSince, inList } from './sql.js'

/** Credential types that are long-lived secrets rather than short-lived, automatically renewed ones. */
export const staticCredentialTypes = [
  'access_key',
  'api_key',
  'private_key',
  'ssh_key',
  'password',
  'client_secret',
  'connection_string',
  'webhook',
  'token',
] as const

/**
 * Static keys whose age (since their last rotation, else since creation) exceeds N days. The
 * limit is per identity kind when `maxKeyAgeDays` names the kind.
 */
export const staticKeyAge: PostureRule = {
  id: 'static-key-age',
  severity: 'medium',
  title: 'Static key too old or never rotated',
  description:
    'An active static credential (access key, API key, private or SSH key, password, client secret, connection string, webhook, token) older than N days since its last rotation, or since creation when it was never rotated.',
  remediation:
    'Rotate the key now and automate rotation; better, replace it with short-lived credentials (SVIDs, token exchange, OIDC federation).',
  thresholds: {
    days: {
      default: 90,
      description: 'maximum age in days (maxKeyAgeDays per identity kind overrides it)',
    },
  },
  query: (ctx) => {
    const perKind = JSON.stringify(ctx.config.maxKeyAgeDays ?? {})
    const limit = sql`coalesce((${perKind}::jsonb ->> i.kind)::double precision, ${ctx.threshold('days')}::double precision)`
    const since = sql`coalesce(c.last_rotated_at, c.created_at)`
    return sql`
    select 'medium' as severity, 'credential' as subject_type, c.id as subject_id,
      c.ref as subject_ref, i.owner_ref, c.identity_id,
      jsonb_build_object('credentialType', c.credential_type, 'preview', c.preview,
        'createdAt', c.created_at, 'lastRotatedAt', c.last_rotated_at,
        'neverRotated', c.last_rotated_at is null, 'ageDays', ${daysSince(since, ctx.now)},
        'maxAgeDays', ${limit}, 'identity', c.identity_ref, 'identityKind', i.kind) as evidence
    from credential c
    left join identity i on i.id = c.identity_id and i.valid_to is null
    where c.valid_to is null and c.state = 'active'
      and ${inList(sql`c.credential_type`, staticCredentialTypes)}
      and ${since} < ${at(ctx.now)} - make_interval(secs => ${limit} * 86400)`
  },
}
