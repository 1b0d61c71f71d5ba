import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createCertificateAuthority, type Ca } from '../../src/ca/ca.js'
import { createDiskKeyManager } from '../../src/ca/key-manager.js'
import { testRoot } from '../../src/ca/testing/pki.js'
import { localBackend, type Backend } from '../../src/cli/backend.js'
import { runCli } from '../../src/cli/program.js'
import { createInventory } from '../../src/inventory/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { Capture, tempDir } from './support.js'

const start = '2026-11-23T10:00:00.000Z'
const hour = 3600_000

for (const backend of testBackends()) {
  describe(`${backend.name}: CA key admin and issuance history (REST and CLI)`, () => {
    let store: Store
    let ca: Ca
    let app: FastifyInstance
    let url: string
    let readToken: string
    let adminToken: string
    let local: Backend
    const kek = randomBytes(32)
    const clock = createFixedClock(start)
    const agentA = randomUUID()
    const agentB = randomUUID()

    before(async () => {
      store = await backend.open()
      ca = await createCertificateAuthority({
        store,
        keyManager: createDiskKeyManager(kek),
        clock,
        trustDomain: 'example.org',
      })
      app = await buildApp({ store, inventory: createInventory({ store, clock }), clock, ca })
      await app.listen({ host: '127.0.0.1', port: 0 })
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
      readToken = (await createApiToken(store, { name: 'r', scopes: ['read'] }, clock)).token
      adminToken = (await createApiToken(store, { name: 'a', scopes: ['admin'] }, clock)).token
      local = {
        ...(await localBackend(store, clock, {
          USER: 'test',
          TESSERA_KEK: kek.toString('base64'),
        })),
        close: async () => {},
      }
      for (const [id, node] of [
        [agentA, 'node-a'],
        [agentB, 'node-b'],
      ] as const) {
        await store.db
          .insertInto('agent')
          .values({
            id,
            spiffe_id: `spiffe://example.org/spire/agent/join_token/${node}`,
            attestation_type: 'join_token',
          })
          .execute()
      }
    })
    after(async () => {
      await app.close()
      await store.close()
    })

    const cli = async (where: 'local' | string | undefined, ...args: string[]) => {
      const stdout = new Capture()
      const stderr = new Capture()
      const env: NodeJS.ProcessEnv = { TESSERA_CONFIG: tempDir() + '/none.json' }
      if (where !== 'local' && where !== undefined) env.TESSERA_TOKEN = where
      const code = await runCli(where === 'local' ? args : ['--server', url, ...args], {
        stdout,
        stderr,
        clock,
        env,
        ...(where === 'local' ? { openBackend: async () => local } : {}),
      })
      return { code, stdout: stdout.text, stderr: stderr.text }
    }
    const api = (method: 'GET' | 'POST', path: string, token?: string) =>
      app.inject({
        method,
        url: path,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      })
    const active = (purpose: 'x509_ca' | 'jwt') =>
      ca.keys().find((k) => k.purpose === purpose && k.slot === 'active' && !k.tainted)!

    it('GET /v1/ca/keys needs the read scope and shows no key material', async () => {
      assert.equal((await api('GET', '/v1/ca/keys')).statusCode, 401)
      const res = await api('GET', '/v1/ca/keys', readToken)
      assert.equal(res.statusCode, 200)
      const items = res.json().items as Record<string, unknown>[]
      assert.deepEqual(items.map((k) => k.purpose).sort(), ['jwt', 'x509_ca'])
      for (const k of items) {
        assert.deepEqual(Object.keys(k).sort(), [
          'id',
          'notAfter',
          'notBefore',
          'published',
          'purpose',
          'revoked',
          'slot',
          'tainted',
        ])
        assert.equal(k.slot, 'active')
      }
      assert.doesNotMatch(res.body, /PRIVATE|BEGIN|encrypted/i)
    })

    it('REST: taint needs admin; a key is revoked only once tainted, then leaves the bundle', async () => {
      const x509 = active('x509_ca')
      assert.equal((await api('POST', `/v1/ca/keys/${x509.id}/taint`, readToken)).statusCode, 403)
      const early = await api('POST', `/v1/ca/keys/${x509.id}/revoke`, adminToken)
      assert.equal(early.statusCode, 409)
      assert.equal(early.json().code, 'TSR_CONFLICT')
      const tainted = await api('POST', '/v1/ca/keys/active:x509_ca/taint', adminToken)
      assert.equal(tainted.statusCode, 200, tainted.body)
      assert.equal(tainted.json().tainted, x509.id)
      assert.notEqual(tainted.json().active, x509.id)
      assert.equal(active('x509_ca').id, tainted.json().active)
      // Still published (workloads re-mint first), then revoked: out of the bundle.
      assert.equal((await ca.bundle()).x509Authorities.length, 2)
      const revoked = await api('POST', `/v1/ca/keys/${x509.id}/revoke`, adminToken)
      assert.equal(revoked.statusCode, 200)
      assert.equal(revoked.json().revoked, true)
      assert.equal(revoked.json().published, false)
      assert.equal((await ca.bundle()).x509Authorities.length, 1)
      const missing = await api('POST', '/v1/ca/keys/x509-nope/taint', adminToken)
      assert.equal(missing.statusCode, 404)
    })

    it('CLI through the server: ca keys, ca taint --purpose jwt, ca revoke, all with --json', async () => {
      const denied = await cli(readToken, 'ca', 'taint', '--purpose', 'jwt', '--json')
      assert.equal(denied.code, 1, denied.stderr)
      assert.match(denied.stderr, /admin scope/)
      const keys = await cli(readToken, 'ca', 'keys', '--json')
      assert.equal(keys.code, 0, keys.stderr)
      const jwt = (JSON.parse(keys.stdout).items as { id: string; purpose: string; slot: string }[])
        .filter((k) => k.purpose === 'jwt' && k.slot === 'active')
        .map((k) => k.id)
      assert.equal(jwt.length, 1)
      const t = await cli(adminToken, 'ca', 'taint', '--purpose', 'jwt', '--json')
      assert.equal(t.code, 0, t.stderr)
      assert.equal(JSON.parse(t.stdout).tainted, jwt[0])
      const r = await cli(adminToken, 'ca', 'revoke', jwt[0]!)
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /revoked CA key jwt-[0-9a-f]+: it is no longer in the bundle/)
      assert.ok(!(await ca.bundle()).jwtAuthorities.some((k) => k.kid === jwt[0]))
      const table = await cli(readToken, 'ca', 'keys')
      assert.match(table.stdout, /^ID +PURPOSE +SLOT/)
      assert.match(table.stdout, /revoked/)
      const usage = await cli(adminToken, 'ca', 'taint')
      assert.equal(usage.code, 2)
    })

    it('CLI on the local store: taint and revoke with the KEK, seen by the server at its next tick', async () => {
      const x509 = active('x509_ca')
      const listed = await cli('local', 'ca', 'keys', '--json')
      assert.equal(listed.code, 0, listed.stderr)
      assert.ok(JSON.parse(listed.stdout).items.some((k: { id: string }) => k.id === x509.id))
      const t = await cli('local', 'ca', 'taint', x509.id, '--json')
      assert.equal(t.code, 0, t.stderr)
      const { tainted, active: successor } = JSON.parse(t.stdout)
      assert.equal(tainted, x509.id)
      await ca.tick()
      assert.equal(active('x509_ca').id, successor)
      // The server's CA signs with the successor the CLI activated.
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const [svid] = await ca.signX509Svids([{ spiffeId: 'spiffe://example.org/x', publicKey }])
      assert.equal(svid!.certChain.length, 1)
      const r = await cli('local', 'ca', 'revoke', x509.id, '--json')
      assert.equal(r.code, 0, r.stderr)
      assert.equal(JSON.parse(r.stdout).revoked, true)
      const again = await cli('local', 'ca', 'revoke', successor, '--json')
      assert.equal(again.code, 3) // TSR_CONFLICT (not tainted) is a runtime failure
      assert.match(again.stderr, /taint the CA key/)
    })

    it('issuance history: who held a SPIFFE ID at an instant, through which agent (REST and CLI)', async () => {
      const spiffeId = 'spiffe://example.org/ns/prod/sa/api'
      clock.set(start)
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const [first] = await ca.signX509Svids([{ spiffeId, publicKey, ttlSeconds: 3600 }], {
        agentId: agentA,
      })
      const jwt = await ca.mintJwtSvid(
        { spiffeId, audience: ['db'], ttlSeconds: 600 },
        { agentId: agentA },
      )
      clock.advance(2 * hour)
      const [second] = await ca.signX509Svids([{ spiffeId, publicKey, ttlSeconds: 3600 }], {
        agentId: agentB,
      })
      const inFirst = new Date(Date.parse(start) + 5 * 60_000).toISOString()
      const inSecond = new Date(Date.parse(start) + 2.5 * hour).toISOString()
      const between = new Date(Date.parse(start) + 1.5 * hour).toISOString()

      const q = (query: string, token = readToken) => api('GET', `/v1/issuance?${query}`, token)
      assert.equal((await api('GET', '/v1/issuance')).statusCode, 401)
      const atFirst = await q(`spiffeId=${encodeURIComponent(spiffeId)}&at=${inFirst}`)
      assert.equal(atFirst.statusCode, 200, atFirst.body)
      const items = atFirst.json().items as Record<string, unknown>[]
      assert.deepEqual(
        items.map((i) => i.serial ?? i.jti),
        [jwt.jti, first!.serial],
      )
      assert.equal(items[1]!.agentId, agentA)
      assert.equal(items[1]!.agentSpiffeId, 'spiffe://example.org/spire/agent/join_token/node-a')
      const atSecond = (await q(`spiffeId=${encodeURIComponent(spiffeId)}&at=${inSecond}`)).json()
      assert.deepEqual(
        atSecond.items.map((i: { serial: string }) => i.serial),
        [second!.serial],
      )
      const gap = (await q(`spiffeId=${encodeURIComponent(spiffeId)}&at=${between}`)).json()
      assert.equal(gap.items.length, 0)
      // Pagination and the agent filter.
      const p1 = (await q(`spiffeId=${encodeURIComponent(spiffeId)}&limit=2`)).json()
      assert.equal(p1.items.length, 2)
      assert.ok(p1.nextCursor)
      const p2 = (
        await q(`spiffeId=${encodeURIComponent(spiffeId)}&limit=2&cursor=${p1.nextCursor}`)
      ).json()
      assert.equal(p2.items.length, 1)
      assert.equal(p2.nextCursor, null)
      const byB = (await q(`agentId=${agentB}`)).json()
      assert.deepEqual(
        byB.items.map((i: { serial: string }) => i.serial),
        [second!.serial],
      )
      assert.equal((await q('cursor=abc')).statusCode, 400)
      assert.equal((await q('at=yesterday')).statusCode, 400)

      for (const where of [readToken, 'local'] as const) {
        const held = await cli(where, 'access', 'held', spiffeId, '--at', inFirst)
        assert.equal(held.code, 0, held.stderr)
        assert.match(held.stdout, /^TYPE +SERIAL \/ JTI +NOT BEFORE +NOT AFTER +AGENT/)
        assert.ok(held.stdout.includes(first!.serial), held.stdout)
        assert.ok(held.stdout.includes(jwt.jti))
        assert.match(held.stdout, /join_token\/node-a/)
        assert.ok(!held.stdout.includes(second!.serial))
        const json = await cli(where, 'access', 'held', spiffeId, '--at', inSecond, '--json')
        assert.equal(json.code, 0, json.stderr)
        const body = JSON.parse(json.stdout)
        assert.equal(body.at, inSecond)
        assert.deepEqual(
          body.items.map((i: { serial: string }) => i.serial),
          [second!.serial],
        )
        assert.equal(
          body.items[0].agentSpiffeId,
          'spiffe://example.org/spire/agent/join_token/node-b',
        )
        const none = await cli(where, 'access', 'held', spiffeId, '--at', between)
        assert.equal(none.code, 1)
        assert.match(none.stdout, /no SVID of spiffe:\/\/example\.org\/ns\/prod\/sa\/api was valid/)
      }
    })
  })
}

describe('CA key admin on a local store whose CA is an upstream intermediate', () => {
  it('refuses a local taint (a successor needs the upstream key) and changes nothing', async () => {
    const store = await testBackends()[0]!.open()
    try {
      const clock = createFixedClock(new Date())
      const kek = randomBytes(32)
      const root = testRoot('example.org')
      const ca = await createCertificateAuthority({
        store,
        keyManager: createDiskKeyManager(kek),
        clock,
        trustDomain: 'example.org',
        upstream: { chain: [root.der], privateKey: root.key, roots: [root.der] },
      })
      const before = ca.keys().map((k) => `${k.id}:${k.slot}:${k.tainted}`)
      const backend: Backend = {
        ...(await localBackend(store, clock, {
          USER: 'test',
          TESSERA_KEK: kek.toString('base64'),
        })),
        close: async () => {},
      }
      const stdout = new Capture()
      const stderr = new Capture()
      const code = await runCli(['ca', 'taint', '--purpose', 'x509_ca'], {
        stdout,
        stderr,
        clock,
        env: { TESSERA_CONFIG: tempDir() + '/none.json' },
        openBackend: async () => backend,
      })
      assert.equal(code, 3)
      assert.match(stderr.text, /intermediate under an upstream CA/)
      await ca.tick()
      assert.deepEqual(
        ca.keys().map((k) => `${k.id}:${k.slot}:${k.tainted}`),
        before,
      )
    } finally {
      await store.close()
    }
  })
})
