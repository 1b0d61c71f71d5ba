import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'

/**
 * Lifetimes above policy: a credential whose validity (expires_at − created_at) exceeds the
 * maximum TTL of its identity's kind (`maxTtlSeconds`, else the `seconds` threshold), and
 * registration entries whose X.509-SVID or JWT-SVID TTL exceeds the SVID limits
 * (`maxTtlSeconds.workload` overrides `svidSeconds`).
 */
export const longTtl: PostureRule = {
  id: 'long-ttl',
  severity: 'medium',
  title: 'Lifetime above policy',
  description:
    'A credential valid for longer than the maximum TTL for its identity kind, or a registration entry whose SVID TTL exceeds the policy.',
  remediation:
    'Re-issue with a lifetime within policy and automate renewal; long lifetimes turn a leak into a long-lived compromise.',
  thresholds: {
    seconds: { default: 397 * 86_400, description: 'maximum credential TTL (397 days)' },
    svidSeconds: { default: 86_400, description: 'maximum X.509-SVID TTL of an entry (24 h)' },
    jwtSvidSeconds: { default: 3_600, description: 'maximum JWT-SVID TTL of an entry (1 h)' },
  },
  query: (ctx) => {
    const perKind = JSON.stringify(ctx.config.maxTtlSeconds ?? {})
    const limit = sql`coalesce((${perKind}::jsonb ->> i.kind)::double precision, ${ctx.threshold('seconds')}::double precision)`
    const x509Max = ctx.config.maxTtlSeconds?.workload ?? ctx.threshold('svidSeconds')
    const jwtMax = ctx.threshold('jwtSvidSeconds')
    const ttl = sql`extract(epoch from (c.expires_at - c.created_at))`
    return sql`
    select 'medium' as severity, 'credential' as subject_type, c.id as subject_id,
      c.ref as subject_ref, i.owner_ref, c.identity_id,
      jsonb_build_object('credentialType', c.credential_type, 'createdAt', c.created_at,
        'expiresAt', c.expires_at, 'ttlSeconds', ${ttl}::bigint,
        'maxTtlSeconds', ${limit}, 'identityKind', i.kind, 'identity', c.identity_ref) as evidence
    from credential c
    left join identity i on i.id = c.identity_id and i.valid_to is null
    where c.valid_to is null and c.state <> 'revoked' and c.expires_at is not null
      and c.created_at is not null and ${ttl} > ${limit}
    union all
    select 'medium', 'entry', e.id, e.spiffe_id || ' (entry ' || e.id::text || ')', e.owner_ref,
      null::uuid,
      jsonb_build_object('spiffeId', e.spiffe_id, 'x509SvidTtl', e.x509_svid_ttl,
        'jwtSvidTtl', e.jwt_svid_ttl, 'maxX509SvidTtl', ${x509Max}::int,
        'maxJwtSvidTtl', ${jwtMax}::int)
    from registration_entry e
    where e.valid_to is null and not e.deleted
      and (e.x509_svid_ttl > ${x509Max}::int or e.jwt_svid_ttl > ${jwtMax}::int)`
  },
}
