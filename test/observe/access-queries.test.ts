import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createAccessQueries, type AccessQueries } from '../../src/audit/access-queries.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
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
const day = '2026-11-23T'
const t = (hms: string) => `${day}${hms}Z`
const bucket = 'arn:aws:s3:::reports'
const bot = 'arn:aws:iam::111122223333:user/report-bot'
const api = 'arn:aws:iam::111122223333:role/api'
const intruder = 'arn:aws:iam::111122223333:user/intruder'
const workload = 'spiffe://example.org/ns/prod/sa/exporter'

async function buildTimeline(store: Store): Promise<void> {
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

const could = (r: { could: { identityRef: string }[] }) => r.could.map((g) => g.identityRef).sort()

for (const backend of testBackends()) {
  describe(`temporal access queries (${backend.name})`, () => {
    let store: Store
    let q: AccessQueries
    before(async () => {
      store = await backend.open()
      await buildTimeline(store)
      q = createAccessQueries({ store })
    })
    after(async () => store.close())

    it('who could access the bucket at each instant of 10:04:00–10:04:03', async () => {
      const expected: [string, string[]][] = [
        ['10:03:59.999', [api]], // report-bot has no key yet, no grant; exporter has no SVID yet
        ['10:04:00.000', [api, workload]],
        ['10:04:00.999', [api, workload]],
        ['10:04:01.000', [api, bot, workload]],
        ['10:04:01.500', [api, bot, workload]],
        ['10:04:01.999', [api, bot, workload]],
        ['10:04:02.000', [workload]], // grant ended, certificate expired
        ['10:04:02.199', [workload]],
        ['10:04:02.200', []], // the SVID's serial is on the deny-list
        ['10:04:03.000', []],
      ]
      for (const [hms, refs] of expected) {
        const r = await q.whoCould(bucket, new Date(t(hms)))
        assert.deepEqual(could(r), [...refs].sort(), `who-could at ${hms}`)
      }
    })

    it('says why a granted identity could not act, and which policy version granted', async () => {
      const r = await q.whoCould(bucket, new Date(t('10:04:01.500')))
      const intr = r.blocked.find((b) => b.identityRef === intruder)
      assert.equal(intr?.reason, 'no-credential')
      const g = r.could.find((c) => c.identityRef === bot)!
      assert.deepEqual(g.actions, ['s3:GetObject'])
      assert.deepEqual(g.policy, { name: 'reports-read', version: 1 })
      assert.deepEqual(
        g.credentials.map((c) => [c.ref, c.validFrom, c.validTo]),
        [['aws-key:report-bot#1', t('10:04:00.000'), t('10:04:03.000')]],
      )
      const later = await q.whoCould(bucket, new Date(t('10:04:01.900')))
      assert.deepEqual(later.could.find((c) => c.identityRef === bot)?.policy, {
        name: 'reports-read',
        version: 2,
      })
      const at2 = await q.whoCould(bucket, new Date(t('10:04:02.500')))
      assert.deepEqual(at2.blocked.map((b) => [b.identityRef, b.reason]).sort(), [
        [api, 'no-credential'],
        [intruder, 'no-credential'],
        [workload, 'no-credential'],
      ])
    })

    it('who did access the bucket in each range', async () => {
      const did = async (from: string, to: string) =>
        (await q.whoDid(bucket, new Date(t(from)), new Date(t(to)))).identities
      const a = await did('10:04:00', '10:04:01')
      // The 09:00 usage hour ends at 10:00, before the range.
      assert.deepEqual(a, [])
      const b = await did('10:04:01', '10:04:02')
      assert.deepEqual(
        b.map((x) => [x.identityRef, x.actions, x.decisions, x.denied, x.firstAt]),
        [[bot, ['s3:GetObject'], 1, 0, t('10:04:01.500')]],
        'report-bot allowed once; the denied intruder did not access',
      )
      const c = await did('10:04:01.500', '10:04:01.501')
      assert.deepEqual(
        c.map((x) => x.identityRef),
        [bot],
        'the range start is inclusive',
      )
      const d = await did('10:04:01.501', '10:04:03')
      assert.deepEqual(
        d.map((x) => [x.identityRef, x.actions]),
        [[api, ['s3:ListBucket']]],
      )
      const e = await did('09:30:00', '10:04:03')
      assert.deepEqual(
        e.map((x) => [x.identityRef, x.actions, x.usage.length]),
        [
          [api, ['s3:GetObject', 's3:ListBucket'], 1],
          [bot, ['s3:GetObject'], 0],
        ],
      )
    })

    it('what each identity could reach at an instant', async () => {
      const r1 = await q.reach(bot, new Date(t('10:04:01.500')))
      assert.equal(r1.usable, true)
      assert.deepEqual(
        r1.grants.map((g) => [g.resourceRef, g.actions]),
        [[bucket, ['s3:GetObject']]],
      )
      const r2 = await q.reach(bot, new Date(t('10:04:02.500')))
      assert.deepEqual(r2.grants, [])
      assert.equal(r2.usable, true, 'the key is still valid; there is just nothing to reach')
      const r3 = await q.reach(bot, new Date(t('10:04:03.000')))
      assert.equal(r3.usable, false)
      const r4 = await q.reach(workload, new Date(t('10:04:02.100')))
      assert.deepEqual(
        r4.credentials.map((c) => c.ref),
        ['x509:abc123'],
      )
      const r5 = await q.reach(workload, new Date(t('10:04:02.300')))
      assert.deepEqual(r5.credentials, [], 'revoked at 10:04:02.200')
      const byId = await q.reach(r1.identityId, new Date(t('10:04:01.500')))
      assert.equal(byId.identity, bot)
      const none = await q.reach('arn:aws:iam::1:user/nobody', new Date(t('10:04:01')))
      assert.equal(none.state, null)
      assert.deepEqual(none.grants, [])
    })

    it('rejects bad input with TSR_VALIDATION', async () => {
      await assert.rejects(q.whoCould('', new Date()), { code: 'TSR_VALIDATION' })
      await assert.rejects(q.whoCould(bucket, new Date('x')), { code: 'TSR_VALIDATION' })
      await assert.rejects(q.whoDid(bucket, new Date(t('10:04:02')), new Date(t('10:04:01'))), {
        code: 'TSR_VALIDATION',
      })
    })
  })
}
