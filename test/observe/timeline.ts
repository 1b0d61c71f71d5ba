import type { Store } from '../../src/store/index.js'
import { addCredential, addEvent, addGrant, addIdentity, addUsage } from './construct.js'

/**
 * The constructed timeline (all on 2026-11-23, UTC):
 *
 *   10:04:00.000  report-bot and api exist; report-bot's key valid 10:04:00–10:04:03;
 *                 api's certificate valid until 10:04:02 (expires_at); api granted s3 read throughout
 *   10:04:01.000  report-bot granted s3:GetObject on the bucket (until 10:04:02.000)
 *   10:04:01.500  report-bot allowed s3:GetObject; intruder denied
 *   10:04:02.000  report-bot's grant ends; api's certificate expires
 *   10:04:02.500  api allowed s3:ListBucket
 *   10:04:03.000  report-bot's key closed; a SPIFFE workload holds an SVID 10:04:00–10:04:03,
 *                 revoked on the deny-list at 10:04:02.200
 */
export const day = '2026-11-23T'
export const t = (hms: string) => `${day}${hms}Z`
export const bucket = 'arn:aws:s3:::reports'
export const bot = 'arn:aws:iam::111122223333:user/report-bot'
export const api = 'arn:aws:iam::111122223333:role/api'
export const intruder = 'arn:aws:iam::111122223333:user/intruder'
export const workload = 'spiffe://example.org/ns/prod/sa/exporter'

export async function buildTimeline(store: Store): Promise<void> {
  await addIdentity(store, { ref: bot, kind: 'iam_user', name: 'report-bot', from: t('10:00:00') })
  await addIdentity(store, { ref: api, kind: 'iam_role', name: 'api', from: t('10:00:00') })
  await addIdentity(store, {
    ref: intruder,
    kind: 'iam_user',
    name: 'intruder',
    from: t('10:00:00'),
  })
  await addIdentity(store, { ref: workload, kind: 'workload', from: t('10:00:00') })
  await addCredential(store, {
    ref: 'aws-key:report-bot#1',
    identity: bot,
    from: t('10:04:00'),
    to: t('10:04:03'),
  })
  await addCredential(store, {
    ref: 'cert:api',
    identity: api,
    type: 'certificate',
    from: t('10:00:00'),
    expiresAt: t('10:04:02'),
  })
  await addGrant(store, {
    identity: bot,
    resource: bucket,
    actions: ['s3:GetObject'],
    via: 'reports-read',
    from: t('10:04:01'),
    to: t('10:04:02'),
  })
  await addGrant(store, {
    identity: api,
    resource: bucket,
    actions: ['s3:ListBucket', 's3:GetObject'],
    from: t('10:00:00'),
  })
  await addGrant(store, {
    identity: intruder,
    resource: bucket,
    actions: ['s3:GetObject'],
    from: t('10:00:00'),
  })
  await addGrant(store, {
    identity: workload,
    resource: bucket,
    actions: ['s3:PutObject'],
    from: t('10:00:00'),
  })
  await store.db
    .insertInto('issuance')
    .values({
      svid_type: 'x509',
      serial: 'abc123',
      spiffe_id: workload,
      not_before: t('10:04:00'),
      not_after: t('10:04:03'),
    })
    .execute()
  await store.db
    .insertInto('revocation')
    .values({ target_type: 'serial', value: 'abc123', created_at: t('10:04:02.200') })
    .execute()
  await store.db
    .insertInto('policy')
    .values({
      policy_type: 'cedar',
      name: 'reports-read',
      version: 1,
      body: 'permit(…);',
      created_at: t('09:00:00'),
    })
    .execute()
  await store.db
    .insertInto('policy')
    .values({
      policy_type: 'cedar',
      name: 'reports-read',
      version: 2,
      body: 'permit(…);',
      created_at: t('10:04:01.800'),
    })
    .execute()
  await addEvent(store, {
    at: t('10:04:01.500'),
    type: 'authz.decision',
    subject: bot,
    resource: bucket,
    action: 's3:GetObject',
    decision: 'allow',
  })
  await addEvent(store, {
    at: t('10:04:01.500'),
    type: 'authz.decision',
    subject: intruder,
    resource: bucket,
    action: 's3:GetObject',
    decision: 'deny',
  })
  await addEvent(store, {
    at: t('10:04:02.500'),
    type: 'authz.decision',
    subject: api,
    resource: bucket,
    action: 's3:ListBucket',
    decision: 'allow',
  })
  // An allow on another resource and another event type must not count.
  await addEvent(store, {
    at: t('10:04:01.700'),
    type: 'authz.decision',
    subject: api,
    resource: 'arn:aws:s3:::other',
    action: 's3:GetObject',
    decision: 'allow',
  })
  await addEvent(store, {
    at: t('10:04:01.700'),
    type: 'issuance.x509',
    subject: intruder,
    resource: bucket,
  })
  // Usage of the previous hour (09:00–10:00) and of this one.
  await addUsage(store, {
    identity: api,
    resource: bucket,
    action: 's3:GetObject',
    hour: t('09:00:00'),
    count: 4,
  })
}
