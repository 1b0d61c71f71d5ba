import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { sql } from 'kysely'
import { createFixedClock } from '../runtime/clock.js'
import type { Store } from '../store/index.js'
import { testBackends } from '../../test/support/stores.js'
import { entityId } from './ids.js'
import { createInventory } from './inventory.js'
import type { Observation } from './observation.js'

/**
 * `identity.next_expires_at` (migration 0014) is the earliest expiry among an identity's current
 * credentials, kept by ingest and run closing. Whatever the order in which identities, credentials
 * and usage arrive, in one call or several, and whatever changes or closes, it must equal what the
 * credential table says, and the "now" list must equal the as-of list taken at the same instant.
 */
const t0 = Date.parse('2026-11-20T12:00:00Z')
const identities = ['a', 'b', 'c', 'd']
const expiries = [null, '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z', '2025-01-01T00:00:00Z']

type Step =
  | {
      op: 'ingest'
      items: Array<{ what: 'identity' | 'credential' | 'usage'; n: number; v: number }>
    }
  | { op: 'fullRun'; keep: number[] }

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('ingest' as const),
      items: fc.array(
        fc.record({
          what: fc.constantFrom('identity' as const, 'credential' as const, 'usage' as const),
          n: fc.nat(5),
          v: fc.nat(7),
        }),
        { minLength: 1, maxLength: 8 },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('fullRun' as const),
      keep: fc.array(fc.nat(5), { maxLength: 4 }),
    }),
  },
)

function identityObs(n: number, v: number): Observation {
  const name = identities[n % identities.length]!
  // v changes the name now and then: a new identity version.
  return {
    type: 'identity',
    source: 'cloud',
    ref: `id:${name}`,
    kind: 'service_account',
    name: v % 3 === 0 ? `${name}-renamed` : name,
  }
}

function credentialObs(n: number, v: number): Observation {
  // Credential n belongs to identity v (it moves when v changes); its expiry depends on v too.
  return {
    type: 'credential',
    source: 'cloud',
    ref: `key:${n}`,
    identity: `id:${identities[v % identities.length]!}`,
    credentialType: 'access_key',
    ...(expiries[(n + v) % expiries.length] === null
      ? {}
      : { expiresAt: expiries[(n + v) % expiries.length]! }),
  }
}

async function checkInvariant(store: Store, now: Date, label: string): Promise<void> {
  const wrong = await sql<{ id: string; kept: Date | null; actual: Date | null }>`
    select i.id, i.next_expires_at as kept,
      (select min(c.expires_at) from credential c
        where c.identity_id = i.id and c.valid_to is null) as actual
    from identity i where i.valid_to is null
  `.execute(store.db)
  for (const r of wrong.rows) {
    assert.equal(
      r.kept === null ? null : new Date(r.kept).getTime(),
      r.actual === null ? null : new Date(r.actual).getTime(),
      `${label}: next_expires_at of ${r.id}`,
    )
  }
  const inventory = createInventory({ store })
  for (const before of ['2026-12-15T00:00:00Z', '2026-06-01T00:00:00Z', '2030-01-01T00:00:00Z']) {
    const expiresBefore = new Date(before)
    const current = await inventory.listIdentities({ expiresBefore })
    const asOf = await inventory.listIdentities({ expiresBefore, at: now })
    assert.deepEqual(
      current.items.map((i) => i.id),
      asOf.items.map((i) => i.id),
      `${label}: expires before ${before}, now vs as of now`,
    )
  }
}

for (const backend of testBackends()) {
  describe(`${backend.name}: identity next expiry`, () => {
    const stores: Store[] = []
    after(async () => {
      await Promise.all(stores.map((s) => s.close()))
    })

    it('follows the current credentials through any order of calls, changes and run closing', async () => {
      const store = await backend.open()
      stores.push(store)
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
          // One store for every run (opening one per run is slow): emptied before each.
          await sql`truncate identity, credential, credential_location, usage, discovery_run`.execute(
            store.db,
          )
          let tick = t0
          const clock = createFixedClock(new Date(tick))
          let runs = 0
          const inventory = createInventory({ store, clock, newId: () => `run-${++runs}` })
          for (const [k, s] of steps.entries()) {
            tick += 60_000
            clock.set(new Date(tick))
            if (s.op === 'ingest') {
              const batch = s.items.map((item): Observation => {
                if (item.what === 'identity') return identityObs(item.n, item.v)
                if (item.what === 'credential') return credentialObs(item.n, item.v)
                return {
                  type: 'usage',
                  source: 'cloud',
                  identity: `id:${identities[item.n % identities.length]!}`,
                  resource: 'db',
                  action: 'read',
                  hour: new Date(t0 - item.v * 3_600_000).toISOString(),
                  count: 1,
                }
              })
              await inventory.ingest(batch)
            } else {
              // A full run that sees only some credentials: the rest close.
              const run = await inventory.startRun('cloud', 'full')
              const seen = s.keep.map((n) => credentialObs(n, 0))
              const ids = identities.map((_, n) => identityObs(n, 1))
              await inventory.ingest([...ids, ...seen], { runs: { cloud: run.id } })
              await inventory.finishRun(run.id)
            }
            await checkInvariant(store, new Date(tick), `step ${k} (${s.op})`)
          }
        }),
        { numRuns: 25, seed: 20261123 },
      )
    })

    it('folds usage and credentials of the same call into a fresh identity', async () => {
      const store = await backend.open()
      stores.push(store)
      const inventory = createInventory({ store, clock: createFixedClock(new Date(t0)) })
      // Credentials and usage before their identity, in an earlier call and in the same one.
      await inventory.ingest([credentialObs(0, 0)])
      await inventory.ingest([
        {
          type: 'usage',
          source: 'cloud',
          identity: 'id:a',
          resource: 'db',
          action: 'read',
          hour: '2026-11-19T08:00:00Z',
          count: 3,
        },
        credentialObs(4, 1), // identity b, expires 2026-12-01
        credentialObs(3, 0), // identity a, expires 2025-01-01
        identityObs(0, 1),
        identityObs(1, 1),
      ])
      const rows = await sql<{
        id: string
        next_expires_at: Date | null
        last_used_at: Date | null
      }>`
        select id, next_expires_at, last_used_at from identity where valid_to is null order by name
      `.execute(store.db)
      const byId = new Map(rows.rows.map((r) => [r.id, r]))
      const a = byId.get(entityId('identity', 'id:a'))!
      const b = byId.get(entityId('identity', 'id:b'))!
      assert.equal(new Date(a.next_expires_at!).toISOString(), '2025-01-01T00:00:00.000Z')
      assert.equal(new Date(a.last_used_at!).toISOString(), '2026-11-19T08:00:00.000Z')
      assert.equal(new Date(b.next_expires_at!).toISOString(), '2026-12-01T00:00:00.000Z')
      assert.equal(b.last_used_at, null)
      await checkInvariant(store, new Date(t0), 'fold')
    })
  })
}
