import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { createAuditLog, type AuditLog } from '../../src/audit/audit-log.js'
import type { StoredAuditEvent } from '../../src/audit/event-sink.js'
import { partitionName } from '../../src/audit/partitions.js'
import { verifyChain } from '../../src/audit/verify.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { openStore } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'

/** Another handle (its own pool) on the same PostgreSQL schema. */
async function reopen(store: Store): Promise<Store> {
  const schema = /\(schema (\w+)\)/.exec(store.location)![1]!
  return openStore({
    backend: 'postgres',
    url: process.env.TESSERA_TEST_DATABASE_URL!,
    schema,
    poolSize: 2,
  })
}

const t0 = '2026-11-23T10:04:00.000Z'

for (const backend of testBackends()) {
  describe(`audit log (${backend.name})`, () => {
    let store: Store
    let log: AuditLog
    const clock = createFixedClock(t0)
    const seen: StoredAuditEvent[][] = []

    before(async () => {
      store = await backend.open()
      log = createAuditLog({
        store,
        clock,
        observers: [{ observe: (batch) => void seen.push([...batch]) }],
      })
    })
    after(async () => {
      await log.close()
      await store.close()
    })

    it('creates daily partitions ahead, and events land in them', async () => {
      await log.append({ type: 'test.first', actor: 'system' })
      const parts = await sql<{ name: string }>`select c.relname as name from pg_inherits i
        join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
        where p.relname = 'event' and c.relnamespace = p.relnamespace
          and p.relnamespace = (select oid from pg_namespace where nspname = current_schema())`.execute(
        store.db,
      )
      const names = parts.rows.map((r) => r.name)
      for (const day of ['2026-11-23', '2026-11-24', '2026-11-25']) {
        assert.ok(names.includes(partitionName(new Date(day))), `partition for ${day}`)
      }
      const where = await sql<{
        part: string
      }>`select tableoid::regclass::text as part from event where event_type = 'test.first'`.execute(
        store.db,
      )
      assert.match(where.rows[0]!.part, /event_p20261123$/)
    })

    it('concurrent appends coalesce into few transactions and get gapless seqs', async () => {
      seen.length = 0
      const n = 500
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          log.append({
            type: 'entry.created',
            actor: 'api-token:abc',
            subject: `spiffe://example.org/w/${i}`,
            data: { i, nested: { z: 1, a: [1, 'x'] }, when: new Date(t0) },
          }),
        ),
      )
      await log.flush()
      const batches = seen.length
      const events = seen.flat()
      assert.equal(events.length, n)
      assert.ok(batches < n / 5, `expected group commit, got ${batches} batches for ${n} events`)
      const seqs = events.map((e) => e.seq)
      for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1)
      // The observer sees what is stored: Dates in data as ISO strings.
      assert.equal(events[0]!.data!.when, t0)
      const result = await verifyChain(store.db)
      assert.deepEqual(result.issues, [])
      assert.equal(result.ok, true)
      assert.equal(result.checked, n + 1)
      assert.equal(result.head?.seq, n + 1)
    })

    it('an acknowledged append is in the table', async () => {
      await log.append({ type: 'revocation.created', subject: 'spiffe://example.org/x' })
      const row = await store.db
        .selectFrom('event')
        .selectAll()
        .where('event_type', '=', 'revocation.created')
        .executeTakeFirstOrThrow()
      assert.equal(row.subject, 'spiffe://example.org/x')
    })

    it('keeps awkward text intact through the hash (NUL, lone surrogates, tabs, quotes)', async () => {
      await log.appendMany([
        {
          type: 'test.text',
          actor: 'a\0b',
          subject: 'x\ud800y',
          data: { s: 'q"\\\t\n\u0000', k: '\udc00' },
        },
        { type: 'test.text', resource: 'tab\there\nnewline\\back' },
      ])
      const result = await verifyChain(store.db)
      assert.deepEqual(result.issues, [])
    })

    it('two writers (replicas) on one store keep one chain: no gaps, no forks', async () => {
      // A second store handle on PostgreSQL is another pool, as another replica would have.
      const other = backend.name === 'postgres' ? await reopen(store) : store
      const second = createAuditLog({ store: other, clock, partitionDaysAhead: 0 })
      try {
        await Promise.all(
          Array.from({ length: 300 }, (_, i) =>
            (i % 2 === 0 ? log : second).append({ type: 'replica.write', data: { i } }),
          ),
        )
        await second.flush()
        const result = await verifyChain(store.db)
        assert.deepEqual(result.issues, [])
        const n = await sql<{
          n: number
        }>`select count(*)::int as n from event where event_type = 'replica.write'`.execute(
          store.db,
        )
        assert.equal(n.rows[0]!.n, 300)
      } finally {
        await second.close()
        if (other !== store) await other.close()
      }
    })

    it('refuses a malformed event with TSR_VALIDATION', async () => {
      await assert.rejects(log.append({ type: 'Not A Type' }), { code: 'TSR_VALIDATION' })
      await assert.rejects(
        log.append({ type: 'x.y', data: [] as unknown as Record<string, unknown> }),
        {
          code: 'TSR_VALIDATION',
        },
      )
    })
  })
}
