import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { isTesseraError } from '../errors.js'
import { createFixedClock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import { testBackends } from '../../test/support/stores.js'
import {
  createDenyListMatcher,
  createRevocationList,
  normaliseSerial,
  normaliseTarget,
  type RevocationList,
} from './revocations.js'

describe('normaliseTarget', () => {
  it('writes a serial one way whatever its separators, case and leading zeros', () => {
    assert.equal(normaliseSerial('0A:1B:ff'), 'a1bff')
    assert.equal(normaliseSerial('00'), '0')
    assert.throws(
      () => normaliseSerial('xyz'),
      (e) => isTesseraError(e, 'TSR_VALIDATION'),
    )
  })

  it('accepts SPIFFE IDs and refuses what is not one', () => {
    assert.equal(
      normaliseTarget('spiffe_id', 'spiffe://example.org/ns/prod/sa/api'),
      'spiffe://example.org/ns/prod/sa/api',
    )
    for (const bad of [
      'https://example.org/x',
      'spiffe://Example.org/x',
      'spiffe://example.org/a/../b',
      'spiffe://example.org/a//b',
      '',
    ]) {
      assert.throws(
        () => normaliseTarget('spiffe_id', bad),
        (e) => isTesseraError(e, 'TSR_VALIDATION'),
        bad,
      )
    }
  })

  it('never throws anything but a TesseraError on arbitrary input', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('spiffe_id', 'serial', 'jti', 'agent' as const),
        fc.string(),
        (type, value) => {
          try {
            normaliseTarget(type, value)
          } catch (err) {
            assert.ok(isTesseraError(err, 'TSR_VALIDATION'), String(err))
          }
        },
      ),
    )
  })
})

describe('deny-list matcher', () => {
  it('matches by any identifier, honours expiry, and keeps the longest-lasting entry', () => {
    const now = new Date('2026-11-23T10:00:00Z')
    const m = createDenyListMatcher([
      {
        id: 1,
        targetType: 'serial',
        value: 'a1b',
        reason: null,
        createdAt: now.toISOString(),
        expiresAt: '2026-11-23T11:00:00.000Z',
        createdBy: null,
      },
      {
        id: 2,
        targetType: 'serial',
        value: 'a1b',
        reason: null,
        createdAt: now.toISOString(),
        expiresAt: null,
        createdBy: null,
      },
      {
        id: 3,
        targetType: 'jti',
        value: 'j-1',
        reason: null,
        createdAt: now.toISOString(),
        expiresAt: '2026-11-23T10:30:00.000Z',
        createdBy: null,
      },
    ])
    assert.equal(m.latest, 3)
    assert.equal(m.denies({ serial: '0A:1B' }, new Date('2026-11-24T00:00:00Z'))?.id, 2)
    assert.equal(m.denies({ jti: 'j-1' }, now)?.id, 3)
    assert.equal(m.denies({ jti: 'j-1' }, new Date('2026-11-23T10:31:00Z')), undefined)
    assert.equal(m.denies({ spiffeId: 'spiffe://x/y', serial: 'not hex' }, now), undefined)
  })
})

for (const backend of testBackends()) {
  describe(`revocation list (${backend.name})`, () => {
    let store: Store
    let clock: ReturnType<typeof createFixedClock>
    let list: RevocationList
    before(async () => {
      store = await backend.open()
      clock = createFixedClock('2026-11-23T10:00:00Z')
      list = createRevocationList({ store, clock })
    })
    after(() => store.close())

    it('adds, lists incrementally, and finds by any identifier', async () => {
      const a = await list.add({
        targetType: 'spiffe_id',
        value: 'spiffe://example.org/api',
        reason: 'key leaked',
        createdBy: 'alice',
      })
      const b = await list.add({ targetType: 'serial', value: '0F:A0' })
      assert.equal(b.value, 'fa0')
      const all = await list.list()
      assert.deepEqual(
        all.items.map((i) => i.id),
        [a.id, b.id],
      )
      assert.equal(all.latest, b.id)
      const newer = await list.list({ after: a.id })
      assert.deepEqual(
        newer.items.map((i) => i.id),
        [b.id],
      )
      assert.equal((await list.find({ serial: 'FA0' }))?.id, b.id)
      assert.equal(
        (await list.find({ spiffeId: 'spiffe://example.org/api', jti: 'nope' }))?.reason,
        'key leaked',
      )
      assert.equal(await list.find({ spiffeId: 'spiffe://example.org/other' }), undefined)
    })

    it('adding the same active target twice keeps one entry', async () => {
      const [x, y] = await Promise.all([
        list.add({ targetType: 'jti', value: 'dup-jti' }),
        list.add({ targetType: 'jti', value: 'dup-jti' }),
      ])
      assert.equal(x.id, y.id)
    })

    it('an expired entry stops denying and is hidden unless asked for', async () => {
      const e = await list.add({
        targetType: 'jti',
        value: 'short',
        expiresAt: new Date(clock.now().getTime() + 60_000),
      })
      assert.equal((await list.find({ jti: 'short' }))?.id, e.id)
      clock.advance(61_000)
      assert.equal(await list.find({ jti: 'short' }), undefined)
      assert.ok(!(await list.list()).items.some((i) => i.id === e.id))
      assert.ok((await list.list({ includeExpired: true })).items.some((i) => i.id === e.id))
      // Once expired, the same target can be revoked again: a new entry.
      const again = await list.add({ targetType: 'jti', value: 'short' })
      assert.notEqual(again.id, e.id)
    })

    it('refuses an expiry in the past and a too-long reason', async () => {
      await assert.rejects(
        list.add({ targetType: 'jti', value: 'p', expiresAt: new Date(clock.now().getTime() - 1) }),
        (e) => isTesseraError(e, 'TSR_VALIDATION'),
      )
      await assert.rejects(
        list.add({ targetType: 'jti', value: 'p', reason: 'x'.repeat(501) }),
        (e) => isTesseraError(e, 'TSR_VALIDATION'),
      )
    })

    it('revoking an agent bans it; an unknown agent is not found', async () => {
      const id = randomUUID()
      await store.db
        .insertInto('agent')
        .values({
          id,
          spiffe_id: `spiffe://example.org/spire/agent/join_token/${id}`,
          attestation_type: 'join_token',
        })
        .execute()
      await list.add({ targetType: 'agent', value: id.toUpperCase(), reason: 'host compromised' })
      const row = await store.db
        .selectFrom('agent')
        .select('banned')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
      assert.equal(row.banned, true)
      assert.equal((await list.find({ agentId: id }))?.reason, 'host compromised')
      await assert.rejects(list.add({ targetType: 'agent', value: randomUUID() }), (e) =>
        isTesseraError(e, 'TSR_NOT_FOUND'),
      )
    })
  })
}
