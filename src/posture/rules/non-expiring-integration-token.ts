import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'

/** Third-party integrations: OAuth apps and API clients. */
export const integrationKinds = ['oauth_app', 'api_client'] as const

/** Active credentials of third-party integrations that never expire. */
export const nonExpiringIntegrationToken: PostureRule = {
  id: 'non-expiring-integration-token',
  severity: 'medium',
  title: 'Third-party integration token never expires',
  description:
    'An active credential of an OAuth app or API client (third-party integration) with no expiry.',
  remediation:
    'Re-issue the token with an expiry (90 days or less) and rotate it automatically; prefer OAuth flows with refresh tokens or workload identity federation.',
  thresholds: {},
  query: () => sql`
    select 'medium' as severity, 'credential' as subject_type, c.id as subject_id,
      c.ref as subject_ref, i.owner_ref, c.identity_id,
      jsonb_build_object('credentialType', c.credential_type, 'preview', c.preview,
        'identity', i.ref, 'identityKind', i.kind, 'createdAt', c.created_at,
        'source', c.source) as evidence
    from credential c
    join identity i on i.id = c.identity_id and i.valid_to is null
      and i.kind in ('oauth_app', 'api_client') and i.state <> 'deleted'
    where c.valid_to is null and c.state = 'active' and c.expires_at is null`,
}
