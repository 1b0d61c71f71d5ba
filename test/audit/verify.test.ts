import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, it } from 'node:test'
import { sql } from 'kysely'
import { createAuditLog } from '../../src/audit/audit-log.js'
import { verifyChain } from '../../src/audit/verify.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'

/**
 * Tampering with the stored log by SQL, the way an intruder with database access would, and
 * checking that `verifyChain` names the place and the kind of change.
 */
for (const backend of testBackends()) {
  describe(`audit verify catches tampering (${backend.name})`, () => {
    let store: Store

    before(async () => {
      store = await backend.open()
    })
    after(async () => {
      await store.close()
    })

    beforeEach(async () => {
      await sql`delete from event`.execute(store.db)
      await sql`update event_chain_head set seq = 0, hash = repeat('0', 64)`.execute(store.db)
      const clock = createFixedClock('2026-11-23T10:04:00.000Z')
      const log = createAuditLog({ store, clock, partitionDaysAhead: 0 })
      for (let i = 1; i <= 10; i++) {
        clock.advance(1000)
        await log.append({
          type: 'authz.decision',
          actor: 'spiffe://example.org/reporting-bot',
          resource: `web-0${i % 3}`,
          action: 'ssh:connect',
          decision: i === 5 ? 'deny' : 'allow',
          data: { i },
        })
      }
      await log.close()
      assert.equal((await verifyChain(store.db)).ok, true)
    })

    it('an edited event: names its seq and time', async () => {
      await sql`update event set decision = 'allow' where seq = 5`.execute(store.db)
      const result = await verifyChain(store.db)
      assert.equal(result.ok, false)
      assert.equal(result.issues.length, 1)
      const [issue] = result.issues
      assert.equal(issue!.kind, 'edited')
      assert.equal(issue!.seq, 5)
      assert.equal(issue!.at, '2026-11-23T10:04:05.000Z')
      assert.match(issue!.message, /seq 5 \(authz\.decision\) does not match its hash/)
    })

    it('an edited event whose hash the intruder recomputed: the next row no longer links', async () => {
      // Re-seal seq 5 with the changed content, as someone who knows the algorithm would.
      const { chainHash, preparedFromStored, rowToEvent } = await import('../../src/audit/chain.js')
      await sql`update event set data = '{"i": 99}' where seq = 5`.execute(store.db)
      const row = (await sql`select * from event where seq = 5`.execute(store.db)).rows[0]
      const e = rowToEvent(row as never)
      const resealed = chainHash(e.prevHash, 5, preparedFromStored(e))
      await sql`update event set hash = ${resealed} where seq = 5`.execute(store.db)
      const result = await verifyChain(store.db)
      assert.equal(result.ok, false)
      assert.deepEqual(
        result.issues.map((i) => [i.kind, i.seq]),
        [['relinked', 6]],
      )
    })

    it('a deleted event: names the missing seq', async () => {
      await sql`delete from event where seq = 7`.execute(store.db)
      const result = await verifyChain(store.db)
      assert.equal(result.ok, false)
      assert.equal(result.issues[0]!.kind, 'missing')
      assert.equal(result.issues[0]!.seq, 7)
      assert.match(result.issues[0]!.message, /seq 7 is missing \(removed\) before seq 8/)
    })

    it('the last events deleted: the chain head shows the truncation', async () => {
      await sql`delete from event where seq >= 9`.execute(store.db)
      const result = await verifyChain(store.db)
      assert.equal(result.ok, false)
      assert.deepEqual(
        result.issues.map((i) => [i.kind, i.seq]),
        [['missing', 9]],
      )
      assert.match(result.issues[0]!.message, /seq 9\.\.10 are missing/)
    })

    it('a reordered pair of events: names both places', async () => {
      // Swap rows 3 and 4 by exchanging their seqs.
      await sql`update event set seq = case seq when 3 then 4 when 4 then 3 end where seq in (3, 4)`.execute(
        store.db,
      )
      const result = await verifyChain(store.db)
      assert.equal(result.ok, false)
      assert.deepEqual(
        result.issues.map((i) => [i.kind, i.seq]),
        [
          ['reordered', 3],
          ['reordered', 4],
        ],
      )
      assert.match(result.issues[0]!.message, /seq 3 holds the event sealed as seq 4/)
    })

    it('an event moved in time (its at changed) is an edit', async () => {
      await sql`update event set at = at - interval '1 hour' where seq = 2`.execute(store.db)
      const result = await verifyChain(store.db)
      assert.deepEqual(
        result.issues.map((i) => [i.kind, i.seq]),
        [['edited', 2]],
      )
    })
  })
}
