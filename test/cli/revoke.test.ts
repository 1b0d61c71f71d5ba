import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { runCli } from '../../src/cli/program.js'
import { createInventory } from '../../src/inventory/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { Capture, cliOn, tempDir } from './support.js'

for (const backend of testBackends()) {
  describe(`${backend.name}: tessera revoke`, () => {
    let store: Store
    let cli: ReturnType<typeof cliOn>
    let app: FastifyInstance
    let url: string
    let writeToken: string
    let readToken: string
    const clock = createFixedClock('2026-11-23T10:00:00Z')

    before(async () => {
      store = await backend.open()
      cli = cliOn(store, clock)
      app = await buildApp({ store, inventory: createInventory({ store, clock }), clock })
      await app.listen({ host: '127.0.0.1', port: 0 })
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
      writeToken = (await createApiToken(store, { name: 'w', scopes: ['write'] }, clock)).token
      readToken = (await createApiToken(store, { name: 'r', scopes: ['read'] }, clock)).token
    })
    after(async () => {
      await app.close()
      await store.close()
    })

    const remote = async (token: string | undefined, ...args: string[]) => {
      const stdout = new Capture()
      const stderr = new Capture()
      const code = await runCli(['--server', url, ...args], {
        stdout,
        stderr,
        clock,
        env: {
          TESSERA_CONFIG: tempDir() + '/none.json',
          ...(token ? { TESSERA_TOKEN: token } : {}),
        },
      })
      return { code, stdout: stdout.text, stderr: stderr.text }
    }

    it('revokes a SPIFFE ID on the local store and lists it', async () => {
      const r = await cli.run(
        'revoke',
        '--spiffe-id',
        'spiffe://example.org/ns/prod/sa/api',
        '--reason',
        'leaked',
      )
      assert.equal(r.code, 0, r.stderr)
      assert.match(
        r.stdout,
        /^revoked SPIFFE ID spiffe:\/\/example\.org\/ns\/prod\/sa\/api \(deny-list entry \d+\)/,
      )
      const list = JSON.parse((await cli.run('revoke', '--list', '--json')).stdout)
      assert.equal(list.items.length, 1)
      assert.equal(list.items[0].reason, 'leaked')
      assert.equal(list.items[0].createdBy, 'cli:test')
    })

    it('through the server: needs the write scope, then is visible to anyone at /v1/revocations', async () => {
      const denied = await remote(readToken, 'revoke', '--serial', '0A:FF', '--json')
      assert.equal(denied.code, 1) // denied
      assert.match(denied.stderr, /write scope/)
      const ok = await remote(
        writeToken,
        'revoke',
        '--serial',
        '0A:FF',
        '--expires-at',
        '1h',
        '--json',
      )
      assert.equal(ok.code, 0, ok.stderr)
      const entry = JSON.parse(ok.stdout)
      assert.equal(entry.value, 'aff')
      assert.equal(entry.expiresAt, '2026-11-23T11:00:00.000Z')
      assert.match(entry.createdBy, /^api-token:/)
      // Relying parties read it without a token, incrementally.
      const res = await fetch(`${url}/v1/revocations?after=${entry.id - 1}`)
      assert.equal(res.status, 200)
      const page = (await res.json()) as { items: { value: string }[]; latest: number }
      assert.deepEqual(
        page.items.map((i) => i.value),
        ['aff'],
      )
      assert.equal(page.latest, entry.id)
      const newer = await remote(
        undefined,
        'revoke',
        '--list',
        '--after',
        String(entry.id),
        '--json',
      )
      assert.deepEqual(JSON.parse(newer.stdout).items, [])
    })

    it('usage errors: no target, two targets, a bad value', async () => {
      const none = await cli.run('revoke')
      assert.equal(none.code, 2)
      assert.match(none.stderr, /exactly one of --spiffe-id, --serial, --jti, --agent/)
      const two = await cli.run('revoke', '--jti', 'a', '--serial', 'ff')
      assert.equal(two.code, 2)
      const bad = await cli.run('revoke', '--spiffe-id', 'http://nope')
      assert.equal(bad.code, 2)
      assert.match(bad.stderr, /not a SPIFFE ID/)
      const unknownAgent = await cli.run(
        'revoke',
        '--agent',
        '6f1c1a53-8f0e-4f55-9d53-3b1a1b0c7a11',
      )
      assert.equal(unknownAgent.code, 1) // nothing found
      assert.match(unknownAgent.stderr, /no agent/)
    })
  })
}
