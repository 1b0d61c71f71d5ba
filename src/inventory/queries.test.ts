import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createFixedClock } from '../runtime/clock.js'
import type { Store } from '../store/index.js'
import { testBackends } from '../../test/support/stores.js'
import { createInventory } from './inventory.js'
import type { IdentityFilter, IdentitySummary } from './inventory-types.js'
import type { Observation } from './observation.js'
import { listIdentities } from './queries.js'

/**
 * `q` and `expiresBefore` have two plans: a bounded walk in name order, and a collect-and-sort over
 * their own indexes once the walk's budget is spent. Whatever the budget, pages must be the same.
 */
const now = new Date('2026-11-20T12:00:00Z')
const soon = '2026-11-25T00:00:00Z'
const later = '2027-06-01T00:00:00Z'

function sample(): Observation[] {
  const out: Observation[] = []
  for (let i = 0; i < 60; i++) {
    const ref = `arn:aws:iam::1:role/r${String(i).padStart(2, '0')}`
    // Every 7th name contains "deploy"; every 5th identity holds a key expiring soon.
    const name = i % 7 === 0 ? `deploy-${i}` : `svc-${String(i).padStart(2, '0')}`
    out.push({ type: 'identity', source: 'aws', ref, kind: 'iam_role', name })
    out.push({
      type: 'credential',
      source: 'aws',
      ref: `key:${i}`,
      identity: ref,
      credentialType: 'access_key',
      expiresAt: i % 5 === 0 ? soon : later,
    })
  }
  return out
}

async function allPages(
  store: Store,
  filter: IdentityFilter,
  walkBudget: number,
): Promise<IdentitySummary[]> {
  const seen: IdentitySummary[] = []
  let cursor: string | undefined
  do {
    const page = await listIdentities(
      store.db,
      { ...filter, limit: 4, ...(cursor ? { cursor } : {}) },
      walkBudget,
    )
    seen.push(...page.items)
    cursor = page.nextCursor
  } while (cursor)
  return seen
}

for (const backend of testBackends()) {
  describe(`${backend.name}: listIdentities plans`, () => {
    let store: Store
    before(async () => {
      store = await backend.open()
      await createInventory({ store, clock: createFixedClock(now) }).ingest(sample())
    })
    after(async () => {
      await store.close()
    })

    const filters: Array<[string, IdentityFilter]> = [
      ['q', { q: 'deploy' }],
      ['expiresBefore', { expiresBefore: new Date('2026-12-01T00:00:00Z') }],
      ['both', { q: 'deploy', expiresBefore: new Date('2026-12-01T00:00:00Z') }],
      ['q with kind', { q: 'svc-1', kind: 'iam_role' }],
      ['no match', { q: 'nothing-like-this' }],
    ]
    for (const [name, filter] of filters) {
      it(`gives the same pages with any walk budget: ${name}`, async () => {
        const reference = await allPages(store, filter, 1_000_000)
        for (const budget of [1, 3, 10, 25]) {
          assert.deepEqual(
            (await allPages(store, filter, budget)).map((i) => i.name),
            reference.map((i) => i.name),
            `walk budget ${budget}`,
          )
        }
        if (name === 'q')
          assert.deepEqual(
            reference.map((i) => i.name).sort(),
            [
              'deploy-0',
              'deploy-14',
              'deploy-21',
              'deploy-28',
              'deploy-35',
              'deploy-42',
              'deploy-49',
              'deploy-56',
              'deploy-7',
            ].sort(),
          )
        if (name === 'expiresBefore') assert.equal(reference.length, 12)
        if (name === 'both')
          assert.deepEqual(
            reference.map((i) => i.name),
            ['deploy-0', 'deploy-35'],
          )
        if (name === 'no match') assert.equal(reference.length, 0)
      })
    }
  })
}
