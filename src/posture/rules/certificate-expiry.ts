import { sql } from 'kysely'
import type { PostureRule } from '../rule-types.js'
import { at, daysSince } from './sql.js'

const evidence = (now: Date) => sql`jsonb_build_object(
  'credentialType', c.credential_type, 'issuer', c.issuer, 'expiresAt', c.expires_at,
  'daysLeft', -${daysSince(sql`c.expires_at`, now)}, 'identity', c.identity_ref,
  'identityKind', i.kind, 'state', c.state, 'source', c.source)`

/** Certificates that have expired: whatever still presents them fails, or is about to be trusted wrongly. */
export const certificateExpired: PostureRule = {
  id: 'certificate-expired',
  severity: 'high',
  title: 'Certificate expired',
  description:
    'A certificate (not revoked) whose notAfter has passed while it is still in the inventory.',
  remediation:
    'Renew or re-issue the certificate (prefer short-lived SVIDs from the Tessera CA), deploy it, and remove the expired one from every location.',
  thresholds: {},
  query: ({ now }) => sql`
    select 'high' as severity, 'credential' as subject_type, c.id as subject_id,
      c.ref as subject_ref, i.owner_ref, c.identity_id, ${evidence(now)} as evidence
    from credential c
    left join identity i on i.id = c.identity_id and i.valid_to is null
    where c.valid_to is null and c.credential_type = 'certificate' and c.state <> 'revoked'
      and c.expires_at <= ${at(now)}`,
}

/** Certificates expiring within N days. */
export const certificateExpiring: PostureRule = {
  id: 'certificate-expiring',
  severity: 'medium',
  title: 'Certificate expiring soon',
  description: 'An active certificate whose notAfter is within the next N days.',
  remediation:
    'Renew the certificate before it expires, or move the workload to automatically rotated SVIDs.',
  thresholds: { days: { default: 30, description: 'how many days ahead counts as soon' } },
  query: (ctx) => {
    const until = new Date(ctx.now.getTime() + ctx.threshold('days') * 86_400_000)
    return sql`
    select 'medium' as severity, 'credential' as subject_type, c.id as subject_id,
      c.ref as subject_ref, i.owner_ref, c.identity_id, ${evidence(ctx.now)} as evidence
    from credential c
    left join identity i on i.id = c.identity_id and i.valid_to is null
    where c.valid_to is null and c.credential_type = 'certificate' and c.state <> 'revoked'
      and c.expires_at > ${at(ctx.now)} and c.expires_at <= ${at(until)}`
  },
}
