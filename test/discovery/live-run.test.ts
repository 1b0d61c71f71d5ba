import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { SourceRunStats } from '../../src/discovery/index.js'
import { linkPaged, startFakeApi, type FakeApi } from '../../src/discovery/testing/fake-api.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { cliOn, tempDir } from '../cli/support.js'
import { testBackends } from '../support/stores.js'

const sample = JSON.parse(
  readFileSync(new URL('../../examples/github/acme-org.json', import.meta.url), 'utf8'),
) as Record<string, unknown>
const token = 'ghp_liveRunTestTokenNeverStored000000000'

for (const backend of testBackends()) {
  describe(`${backend.name}: tessera discover run against a live API`, () => {
    let store: Store
    let api: FakeApi
    const clock = createFixedClock('2026-11-20T12:00:00Z')
    const dir = tempDir()
    before(async () => {
      store = await backend.open()
      api = await startFakeApi((req, base) => {
        if (req.headers.authorization !== `Bearer ${token}`) return { status: 401, body: {} }
        const key = req.path.slice(1)
        if (key === 'orgs/acme/repos') return linkPaged(req, base, [{ full_name: 'acme/payments' }])
        const value = sample[key]
        if (value === undefined) return key.startsWith('repos/') ? { body: [] } : undefined
        return { body: value }
      })
      writeFileSync(
        join(dir, 'sources.yaml'),
        [
          'sources:',
          '  - name: github:acme',
          '    type: github',
          `    options: { api: "${api.url}", org: acme, tokenEnv: GH_TOKEN }`,
        ].join('\n'),
      )
    })
    after(async () => {
      await api.close()
      await store.close()
    })

    it('ingests the organisation read from the API, idempotently, and never stores the token', async () => {
      const cli = cliOn(store, clock, { GH_TOKEN: token })
      const run = async () => {
        const r = await cli.run('discover', 'run', '--json', '--config', join(dir, 'sources.yaml'))
        assert.equal(r.code, 0, r.stderr)
        return (JSON.parse(r.stdout) as { sources: SourceRunStats[] }).sources[0]!
      }
      const first = await run()
      assert.equal(first.status, 'succeeded')
      assert.ok(first.seen > 20, `seen ${first.seen}`)
      clock.advance(3_600_000)
      const second = await run()
      assert.deepEqual([second.new, second.changed, second.closed], [0, 0, 0])
      const list = await cli.run('inventory', 'list', '--json', '--source', 'github:acme')
      assert.equal(list.code, 0, list.stderr)
      assert.match(list.stdout, /acme-deploy-bot\[bot\] on acme/)
      const dump = await store.db
        .selectFrom('identity')
        .selectAll()
        .execute()
        .then((rows) => JSON.stringify(rows))
      assert.ok(!dump.includes(token))
    })
  })
}
