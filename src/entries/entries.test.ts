import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { isTesseraError } from '../errors.js'
import { createFixedClock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import { testBackends } from '../../test/support/stores.js'
import { createEntries } from './entries.js'
import { parseSelector } from './entry-validate.js'
import { parseSpiffeId } from './spiffe-id.js'

const td = 'example.org'
const base = {
  spiffeId: `spiffe://${td}/web`,
  parentId: `spiffe://${td}/spire/agent/join_token/a1`,
  selectors: [{ type: 'unix', value: 'uid:1000' }],
  owner: 'team-web',
}

for (const backend of testBackends()) {
  describe(`entries (${backend.name})`, () => {
    let store: Store
    const clock = createFixedClock('2026-05-01T00:00:00Z')
    before(async () => {
      store = await backend.open()
    })
    after(async () => {
      await store.close()
    })

    it('creates, reads, updates and deletes with a new revision each time, never in place', async () => {
      const entries = createEntries({ store, clock, trustDomain: td })
      const created = await entries.create({
        ...base,
        x509SvidTtl: 600,
        dnsNames: ['Web.example.org'],
        federatesWith: ['partner.org'],
        hint: 'web',
      })
      assert.equal(created.owner, 'team-web')
      assert.deepEqual(created.dnsNames, ['web.example.org'])
      assert.deepEqual(await entries.get(created.id), created)

      const updated = await entries.update(created.id, { x509SvidTtl: null, jwtSvidTtl: 60 })
      assert.ok(updated.revision > created.revision)
      assert.equal(updated.x509SvidTtl, undefined)
      assert.equal(updated.jwtSvidTtl, 60)
      assert.equal(updated.hint, 'web')

      const deleted = await entries.delete(created.id)
      assert.ok(deleted.revision > updated.revision)
      assert.equal(await entries.get(created.id), undefined)
      await assert.rejects(entries.update(created.id, { hint: 'x' }), { code: 'TSR_NOT_FOUND' })

      const versions = await store.db
        .selectFrom('registration_entry')
        .select(['revision', 'deleted', 'valid_to'])
        .where('id', '=', created.id)
        .orderBy('revision')
        .execute()
      assert.equal(versions.length, 3)
      assert.deepEqual(
        versions.map((v) => [v.deleted, v.valid_to === null]),
        [
          [false, false],
          [false, false],
          [true, true],
        ],
      )

      const changes = await entries.changes(created.revision - 1)
      assert.deepEqual(
        changes.deltas.map((d) => d.op),
        ['upsert', 'upsert', 'delete'],
      )
      assert.equal(changes.revision, deleted.revision)
      assert.equal(await entries.latestRevision(), deleted.revision)
      const none = await entries.changes(deleted.revision)
      assert.deepEqual(none, { deltas: [], revision: deleted.revision, more: false })
    })

    it('refuses an entry without an owner, with a clear error', async () => {
      const entries = createEntries({ store, clock })
      for (const owner of [undefined, '', '   ']) {
        await assert.rejects(
          entries.create({ ...base, owner: owner as string }),
          (err) =>
            isTesseraError(err, 'TSR_VALIDATION') &&
            /owner: an owner is required/.test(err.message),
        )
      }
    })

    it('validates SPIFFE IDs, selectors, TTLs, DNS names and trust domains', async () => {
      const entries = createEntries({ store, clock, trustDomain: td })
      const bad: [Record<string, unknown>, RegExp][] = [
        [{ spiffeId: 'https://example.org/web' }, /spiffeId: .*spiffe:\/\//],
        [{ spiffeId: `spiffe://${td}` }, /spiffeId: must have a path/],
        [{ spiffeId: `spiffe://other.org/web` }, /not this server's/],
        [{ spiffeId: `spiffe://${td}/a//b` }, /empty segment/],
        [{ spiffeId: `spiffe://${td}/a/../b` }, /\.\./],
        [{ spiffeId: `spiffe://Example.org/a` }, /trust domain/],
        [{ parentId: `spiffe://${td}/web` }, /own parent/],
        [{ selectors: [] }, /at least one selector/],
        [{ selectors: [{ type: 'Unix', value: 'x' }] }, /type must be/],
        [{ x509SvidTtl: 0 }, /x509SvidTtl/],
        [{ jwtSvidTtl: 1.5 }, /jwtSvidTtl/],
        [{ dnsNames: ['bad name'] }, /not a DNS name/],
        [{ federatesWith: [td] }, /own trust domain/],
        [{ expiresAt: new Date('2020-01-01T00:00:00Z') }, /future/],
      ]
      for (const [change, pattern] of bad) {
        await assert.rejects(
          entries.create({ ...base, ...change } as typeof base),
          (err) => isTesseraError(err, 'TSR_VALIDATION') && pattern.test(err.message),
          JSON.stringify(change),
        )
      }
    })

    it('refuses a duplicate (same spiffeId, parentId and selectors)', async () => {
      const entries = createEntries({ store, clock })
      const spiffeId = `spiffe://${td}/dup`
      await entries.create({ ...base, spiffeId })
      await assert.rejects(
        entries.create({ ...base, spiffeId, selectors: [...base.selectors].reverse() }),
        { code: 'TSR_CONFLICT' },
      )
    })

    it('lists with filters and a cursor', async () => {
      const entries = createEntries({ store, clock })
      const parentId = `spiffe://${td}/spire/agent/list-test`
      for (let i = 0; i < 5; i++) {
        await entries.create({
          spiffeId: `spiffe://${td}/list/${i}`,
          parentId,
          selectors: [{ type: 'k8s', value: `ns:ns${i % 2}` }],
          owner: i < 3 ? 'alice' : 'bob',
        })
      }
      const page1 = await entries.list({ parentId, limit: 2 })
      assert.equal(page1.items.length, 2)
      assert.ok(page1.nextCursor)
      const page2 = await entries.list({ parentId, limit: 2, cursor: page1.nextCursor })
      const page3 = await entries.list({ parentId, limit: 2, cursor: page2.nextCursor! })
      assert.deepEqual(
        [...page1.items, ...page2.items, ...page3.items].map((e) => e.spiffeId),
        [0, 1, 2, 3, 4].map((i) => `spiffe://${td}/list/${i}`),
      )
      assert.equal(page3.nextCursor, null)
      const ns1 = await entries.list({ parentId, selector: parseSelector('k8s:ns:ns1') })
      assert.deepEqual(
        ns1.items.map((e) => e.spiffeId),
        [`spiffe://${td}/list/1`, `spiffe://${td}/list/3`],
      )
      assert.equal((await entries.list({ parentId, owner: 'bob' })).items.length, 2)
      assert.equal((await entries.list({ spiffeId: `spiffe://${td}/list/4` })).items.length, 1)
      await assert.rejects(entries.list({ cursor: 'nope!' }), { code: 'TSR_VALIDATION' })
    })

    it('concurrent writers commit revisions in order, so `changes` never skips one', async () => {
      const entries = createEntries({ store, clock })
      const start = await entries.latestRevision()
      const seen: number[] = []
      let since = start
      const writes = Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          entries.create({ ...base, spiffeId: `spiffe://${td}/conc/${i}` }),
        ),
      )
      let done = false
      void writes.then(() => (done = true))
      while (!done) {
        const c = await entries.changes(since)
        for (const d of c.deltas) seen.push(d.revision)
        since = c.revision
      }
      const rest = await entries.changes(since)
      for (const d of rest.deltas) seen.push(d.revision)
      const created = (await writes).map((e) => e.revision).sort((a, b) => a - b)
      assert.deepEqual(seen, created)
    })
  })
}

describe('SPIFFE ID and selector parsing', () => {
  it('never crashes on arbitrary input: a value or a TSR_VALIDATION error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.webUrl(), fc.anything()), (value) => {
        try {
          const parsed = parseSpiffeId(value)
          assert.ok(typeof value === 'string' && value.startsWith('spiffe://'))
          assert.equal(typeof parsed.trustDomain, 'string')
        } catch (err) {
          assert.ok(isTesseraError(err, 'TSR_VALIDATION'), String(err))
        }
        try {
          parseSelector(value as string)
        } catch (err) {
          assert.ok(isTesseraError(err, 'TSR_VALIDATION'), String(err))
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('keeps the colons of a selector value', () => {
    assert.deepEqual(parseSelector('unix:uid:1000'), { type: 'unix', value: 'uid:1000' })
  })
})
