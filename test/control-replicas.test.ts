import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { joinTokenEvidence } from '../src/attestation/join-token-attestor.js'
import { createJoinToken } from '../src/attestation/join-tokens.js'
import { createAgentControlClient } from '../src/agent/sync/control-client.js'
import { createEntries } from '../src/entries/entries.js'
import { createInventory } from '../src/inventory/index.js'
import { systemClock } from '../src/runtime/clock.js'
import { buildApp } from '../src/server/app.js'
import { createApiToken } from '../src/server/auth/api-tokens.js'
import { openStore, type Store } from '../src/store/index.js'
import { createFakeCa } from './support/fake-ca.js'
import { freshSchemaName, testBackends } from './support/stores.js'

const td = 'example.org'

/**
 * Two replicas over one store: an entry written through replica A reaches an agent streaming from
 * replica B through the store (B's revision poll), not through any in-process notification.
 */
for (const backend of testBackends()) {
  describe(`entry propagation across replicas (${backend.name})`, () => {
    let storeA: Store
    let storeB: Store
    const apps: FastifyInstance[] = []
    const urls: string[] = []
    let admin: string

    before(async () => {
      if (backend.name === 'postgres') {
        const url = process.env.TESSERA_TEST_DATABASE_URL!
        const schema = freshSchemaName()
        storeA = await openStore({ backend: 'postgres', url, schema, poolSize: 4 })
        storeB = await openStore({ backend: 'postgres', url, schema, poolSize: 4 })
      } else {
        // PGlite is one process's database: both replicas share it, each with its own mirror.
        storeA = storeB = await backend.open()
      }
      const ca = await createFakeCa(td, systemClock)
      for (const store of [storeA, storeB]) {
        const app = await buildApp({
          store,
          inventory: createInventory({ store }),
          control: { ca, pollIntervalMs: 250 },
        })
        await app.listen({ host: '127.0.0.1', port: 0 })
        apps.push(app)
        urls.push(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
      }
      admin = (await createApiToken(storeA, { name: 'admin', scopes: ['admin'] })).token
    })
    after(async () => {
      for (const app of apps) await app.close()
      await storeA.close()
      if (storeB !== storeA) await storeB.close()
    })

    it('an entry created on A reaches an agent on B within a poll', async (t) => {
      const { token } = await createJoinToken(storeB, {})
      const client = createAgentControlClient({
        serverUrl: urls[1]!,
        attestor: joinTokenEvidence(token),
      })
      await client.start()
      try {
        const latencies: number[] = []
        for (let i = 0; i < 10; i++) {
          const t0 = performance.now()
          const res = await fetch(`${urls[0]}/v1/entries`, {
            method: 'POST',
            headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              spiffeId: `spiffe://${td}/replica/${i}`,
              parentId: client.spiffeId(),
              selectors: [`unix:uid:${i}`],
              owner: 'team',
            }),
          })
          const { id } = (await res.json()) as { id: string }
          while (!client.entries().has(id)) {
            assert.ok(performance.now() - t0 < 2000, 'entry did not arrive within 2 s')
            await new Promise((r) => setTimeout(r, 5))
          }
          latencies.push(performance.now() - t0)
        }
        latencies.sort((a, b) => a - b)
        t.diagnostic(
          `A→B propagation over ${latencies.length} entries: p50 ${latencies[4]!.toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms (poll 250 ms)`,
        )
        assert.ok(latencies.at(-1)! < 1000)
      } finally {
        await client.stop()
      }
    })

    it('an empty poll is one cheap indexed query, also with many revisions', async (t) => {
      const entries = createEntries({ store: storeA })
      const rows = Array.from({ length: 20_000 }, (_, i) => [
        crypto.randomUUID(),
        `spiffe://${td}/bulk/${i}`,
        `spiffe://${td}/spire/agent/x/y`,
        JSON.stringify([{ type: 'unix', value: `uid:${i}` }]),
        'team',
      ])
      await storeA.bulkInsert(
        'registration_entry',
        ['id', 'spiffe_id', 'parent_id', 'selectors', 'owner_ref'],
        rows,
      )
      const latest = await entries.latestRevision()
      const times: number[] = []
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now()
        const c = await entries.changes(latest)
        times.push(performance.now() - t0)
        assert.equal(c.deltas.length, 0)
      }
      times.sort((a, b) => a - b)
      t.diagnostic(
        `empty poll at ${latest} revisions: p50 ${times[100]!.toFixed(2)} ms, p99 ${times[198]!.toFixed(2)} ms`,
      )
      assert.ok(times[100]! < 20)
    })
  })
}
