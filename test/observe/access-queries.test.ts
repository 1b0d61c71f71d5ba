import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createAccessQueries, type AccessQueries } from '../../src/audit/access-queries.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { api, bot, bucket, buildTimeline, intruder, t, workload } from './timeline.js'

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
