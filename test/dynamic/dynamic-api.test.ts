import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { createClient } from 'redis'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { startCa, type RunningCa } from '../../src/ca/start.js'
import { testLeaf, testRoot } from '../../src/ca/testing/pki.js'
import { createInventory } from '../../src/inventory/index.js'
import {
  createDynamicCredentials,
  type DynamicCredentials,
} from '../../src/lifecycle/dynamic/dynamic-credentials.js'
import { parseDynamicConfig } from '../../src/lifecycle/dynamic/dynamic-config.js'
import { createDynamicBackends } from '../../src/lifecycle/dynamic/dynamic-registry.js'
import { dynamicAudience, signWorkloadProof } from '../../src/lifecycle/dynamic/workload-auth.js'
import { systemClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { eventually, loginUrl, pgAdminUrl, pgFixture, redisUrl } from './support.js'

const td = 'dyn.example.org'
const orders = `spiffe://${td}/ns/shop/sa/orders`
const stranger = `spiffe://${td}/ns/other/sa/batch`

for (const storeBackend of testBackends()) {
  describe(`POST /v1/dynamic/{backend} with real SVIDs (${storeBackend.name} store)`, () => {
    let store: Store
    let ca: RunningCa
    let app: FastifyInstance
    let dynamic: DynamicCredentials
    let fx: Awaited<ReturnType<typeof pgFixture>>
    let adminToken: string
    const events = createMemoryEventSink()
    const fpKey = randomBytes(32)
    // Its own users on the shared servers: other test files' sweeps leave them alone, and back.
    const installation = randomBytes(3).toString('hex')

    /** A real X509-SVID minted by the CA, with its key. */
    const x509Svid = async (spiffeId: string) => {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const [svid] = await ca.ca.signX509Svids([{ spiffeId, publicKey, ttlSeconds: 600 }])
      return { chain: svid!.certChain, key: privateKey, serial: svid!.serial }
    }
    const proofFor = (
      svid: { chain: readonly Uint8Array[]; key: KeyObject },
      url: string,
      body: string,
      now = new Date(),
    ) => signWorkloadProof({ ...svid, method: 'POST', pathAndQuery: url, body, now })
    const request = (url: string, body: string, authorization?: string) =>
      app.inject({
        method: 'POST',
        url,
        payload: body,
        headers: {
          'content-type': 'application/json',
          ...(authorization ? { authorization } : {}),
        },
      })
    const askWithX509 = async (spiffeId: string, backend: string, template: string) => {
      const svid = await x509Svid(spiffeId)
      const url = `/v1/dynamic/${backend}`
      const body = JSON.stringify({ template, ttlSeconds: 300 })
      return request(url, body, `Bearer ${await proofFor(svid, url, body)}`)
    }

    before(async () => {
      store = await storeBackend.open()
      ca = await startCa({
        store,
        clock: systemClock,
        trustDomain: td,
        kek: randomBytes(32).toString('base64'),
        tickMs: 3_600_000,
        warn: () => {},
      })
      fx = await pgFixture()
      const config = parseDynamicConfig({
        backends: {
          pg: {
            type: 'postgres',
            url: pgAdminUrl,
            maxTtlSeconds: 600,
            templates: { reader: { role: fx.templateRole, allow: [`spiffe://${td}/ns/shop/*`] } },
          },
          cache: {
            type: 'redis',
            url: redisUrl,
            templates: { reader: { rules: ['~cache:*', '+get'], allow: [orders] } },
          },
        },
      })
      const inventory = createInventory({ store, clock: systemClock })
      dynamic = createDynamicCredentials({
        store,
        clock: systemClock,
        backends: createDynamicBackends(config),
        events,
        inventory,
        fingerprint: async (pw) => createHmac('sha256', fpKey).update(pw).digest('hex'),
        isRevoked: async (id) =>
          (await store.db
            .selectFrom('revocation')
            .select('id')
            .where('target_type', '=', 'spiffe_id')
            .where('value', '=', id)
            .executeTakeFirst()) !== undefined,
        pendingGraceMs: 1000,
        orphanScanEvery: 1,
        installation,
      })
      app = await buildApp({ store, inventory, ca: ca.ca, clock: systemClock, dynamic })
      adminToken = (await createApiToken(store, { name: 'admin', scopes: ['admin'] })).token
    })
    after(async () => {
      for (const l of await dynamic.list({ state: 'active', limit: 1000 })) {
        await dynamic.revoke(l.id).catch(() => {})
      }
      await app.close()
      await dynamic.close()
      ca.stop()
      await store.close()
      await fx.cleanup()
    })

    it('issues a PostgreSQL role for an X509-SVID proof: its grants exactly, audited, inventoried', async () => {
      const res = await askWithX509(orders, 'pg', 'reader')
      assert.equal(res.statusCode, 201, res.body)
      assert.equal(res.headers['cache-control'], 'no-store')
      const body = res.json()
      assert.equal(body.spiffeId, orders)
      assert.match(body.username, new RegExp(`^tsr_${installation}_[0-9a-f]{10}_[a-z2-7]{12}$`))
      assert.equal(typeof body.password, 'string')
      assert.ok(Date.parse(body.expiresAt) - Date.now() <= 300_000)
      const client = new pg.Client({ connectionString: loginUrl(body.username, body.password) })
      await client.connect()
      try {
        assert.equal((await client.query(`SELECT * FROM ${fx.schema}.orders`)).rowCount, 2)
        await assert.rejects(client.query(`INSERT INTO ${fx.schema}.orders VALUES (9, 'x')`), {
          code: '42501',
        })
        await assert.rejects(client.query(`SELECT * FROM ${fx.schema}.secrets`), { code: '42501' })
      } finally {
        await client.end()
      }
      const lease = await dynamic.get(body.leaseId)
      assert.equal(lease.state, 'active')
      assert.equal(lease.createdBy, 'x509-svid')
      // Only a fingerprint is kept, nowhere the password.
      assert.equal(
        lease.fingerprint,
        createHmac('sha256', fpKey).update(body.password).digest('hex'),
      )
      assert.ok(!JSON.stringify(await dynamic.list()).includes(body.password))
      const created = events.events.find(
        (e) => e.type === 'dynamic.created' && e.data?.leaseId === body.leaseId,
      )
      assert.ok(created)
      assert.equal(created.subject, orders)
      assert.ok(!JSON.stringify(events.events).includes(body.password))
      await eventually(async () => {
        const row = await store.db
          .selectFrom('credential')
          .selectAll()
          .where('ref', '=', `dynamic:pg:${body.username}`)
          .where('valid_to', 'is', null)
          .executeTakeFirst()
        return row?.state === 'active' && row.identity_ref === orders && row.expires_at !== null
      })
    })

    it('issues a Redis user for a JWT-SVID with the dynamic audience', async () => {
      const jwt = await ca.ca.mintJwtSvid({ spiffeId: orders, audience: [dynamicAudience(td)] })
      const res = await request(
        '/v1/dynamic/cache',
        JSON.stringify({ template: 'reader' }),
        `Bearer ${jwt.token}`,
      )
      assert.equal(res.statusCode, 201, res.body)
      const { username, password } = res.json()
      const c = createClient({ url: redisUrl, username, password })
      await c.connect()
      try {
        assert.equal(await c.get('cache:none'), null)
        await assert.rejects(c.set('cache:x', '1'), /NOPERM/)
      } finally {
        await c.quit()
      }
      const other = await ca.ca.mintJwtSvid({ spiffeId: orders, audience: ['spiffe://x/other'] })
      const refused = await request(
        '/v1/dynamic/cache',
        JSON.stringify({ template: 'reader' }),
        `Bearer ${other.token}`,
      )
      assert.equal(refused.statusCode, 401)
      assert.equal(refused.json().code, 'TSR_DYNAMIC_UNAUTHENTICATED')
    })

    it('refuses missing, replayed, re-targeted, stale, foreign and agent proofs', async () => {
      const url = '/v1/dynamic/pg'
      const body = JSON.stringify({ template: 'reader' })
      const svid = await x509Svid(orders)
      const code = async (res: Awaited<ReturnType<typeof request>>) => [
        res.statusCode,
        res.json().code,
      ]
      const unauth = [401, 'TSR_DYNAMIC_UNAUTHENTICATED']
      assert.deepEqual(await code(await request(url, body)), unauth)
      assert.deepEqual(await code(await request(url, body, 'Bearer not-a-jws')), unauth)
      const proof = await proofFor(svid, url, body)
      assert.equal((await request(url, body, `Bearer ${proof}`)).statusCode, 201)
      assert.deepEqual(await code(await request(url, body, `Bearer ${proof}`)), unauth) // replay
      const otherBody = JSON.stringify({ template: 'reader', ttlSeconds: 600 })
      assert.deepEqual(
        await code(await request(url, otherBody, `Bearer ${await proofFor(svid, url, body)}`)),
        unauth,
      )
      assert.deepEqual(
        await code(
          await request('/v1/dynamic/cache', body, `Bearer ${await proofFor(svid, url, body)}`),
        ),
        unauth,
      )
      const stale = await proofFor(svid, url, body, new Date(Date.now() - 120_000))
      assert.deepEqual(await code(await request(url, body, `Bearer ${stale}`)), unauth)
      // Signed with a key that is not the SVID's.
      const wrongKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
      assert.deepEqual(
        await code(
          await request(
            url,
            body,
            `Bearer ${await proofFor({ ...svid, key: wrongKey }, url, body)}`,
          ),
        ),
        unauth,
      )
      // An SVID from another CA of the same name.
      const root = testRoot(td)
      const foreign = testLeaf(root, orders)
      assert.deepEqual(
        await code(
          await request(
            url,
            body,
            `Bearer ${await proofFor({ chain: [foreign.der], key: foreign.key }, url, body)}`,
          ),
        ),
        unauth,
      )
      const agent = await x509Svid(`spiffe://${td}/spire/agent/join_token/abc`)
      assert.deepEqual(
        await code(await request(url, body, `Bearer ${await proofFor(agent, url, body)}`)),
        unauth,
      )
    })

    it('refuses a workload the template does not allow, and a revoked one', async () => {
      const res = await askWithX509(stranger, 'pg', 'reader')
      assert.equal(res.statusCode, 403)
      assert.equal(res.json().code, 'TSR_DYNAMIC_DENIED')
      const missing = await askWithX509(orders, 'nope', 'reader')
      assert.equal(missing.statusCode, 404)
      const revokedId = `spiffe://${td}/ns/shop/sa/revoked`
      const rev = await app.inject({
        method: 'POST',
        url: '/v1/revocations',
        headers: { authorization: `Bearer ${adminToken}` },
        payload: { targetType: 'spiffe_id', value: revokedId },
      })
      assert.equal(rev.statusCode, 201)
      const denied = await askWithX509(revokedId, 'pg', 'reader')
      assert.equal(denied.statusCode, 403)
      assert.equal(denied.json().code, 'TSR_DYNAMIC_DENIED')
    })

    it('revoking the SPIFFE ID revokes its leases at once and ends their sessions', async () => {
      const id = `spiffe://${td}/ns/shop/sa/to-revoke`
      const res = await askWithX509(id, 'pg', 'reader')
      assert.equal(res.statusCode, 201, res.body)
      const { username, password, leaseId } = res.json()
      const client = new pg.Client({ connectionString: loginUrl(username, password) })
      client.on('error', () => {})
      await client.connect()
      await client.query('SELECT 1')
      const rev = await app.inject({
        method: 'POST',
        url: '/v1/revocations',
        headers: { authorization: `Bearer ${adminToken}` },
        payload: { targetType: 'spiffe_id', value: id, reason: 'compromised' },
      })
      assert.equal(rev.statusCode, 201)
      assert.equal((await dynamic.get(leaseId)).state, 'revoked')
      assert.equal(await fx.roleExists(username), false)
      await assert.rejects(client.query('SELECT 1'))
      await client.end().catch(() => {})
      const revoked = events.events.find(
        (e) => e.type === 'dynamic.revoked' && e.data?.leaseId === leaseId,
      )
      assert.equal(revoked?.subject, id)
      assert.equal(revoked?.data?.reason, 'spiffe-id-revoked')
      assert.equal(revoked?.data?.sessionsTerminated, 1)
    })

    it('lists and revokes leases with an API token', async () => {
      const res = await askWithX509(orders, 'pg', 'reader')
      const { leaseId, username } = res.json()
      const auth = { authorization: `Bearer ${adminToken}` }
      const list = await app.inject({
        method: 'GET',
        url: `/v1/dynamic/leases?spiffeId=${encodeURIComponent(orders)}&state=active`,
        headers: auth,
      })
      assert.equal(list.statusCode, 200)
      assert.ok(list.json().items.some((l: { id: string }) => l.id === leaseId))
      assert.ok(!list.body.includes('password'))
      assert.equal((await app.inject({ method: 'GET', url: '/v1/dynamic/leases' })).statusCode, 401)
      const revoke = await app.inject({
        method: 'POST',
        url: `/v1/dynamic/leases/${leaseId}/revoke`,
        headers: auth,
        payload: { reason: 'done' },
      })
      assert.equal(revoke.statusCode, 200, revoke.body)
      assert.equal(revoke.json().state, 'revoked')
      assert.equal(revoke.json().revokeReason, 'done')
      assert.equal(await fx.roleExists(username), false)
      const backends = await app.inject({
        method: 'GET',
        url: '/v1/dynamic/backends',
        headers: auth,
      })
      assert.deepEqual(
        backends.json().items.map((b: { name: string }) => b.name),
        ['pg', 'cache'],
      )
      assert.ok(!backends.body.includes('postgres://'))
    })

    it('the reaper revokes at expiry, sweeps pending orphans and orphan roles, samples use', async () => {
      const svid = await x509Svid(orders)
      const url = '/v1/dynamic/pg'
      const body = JSON.stringify({ template: 'reader', ttlSeconds: 1 })
      const res = await request(url, body, `Bearer ${await proofFor(svid, url, body)}`)
      assert.equal(res.statusCode, 201, res.body)
      const { leaseId, username, password } = res.json()
      const client = new pg.Client({ connectionString: loginUrl(username, password) })
      client.on('error', () => {})
      await client.connect()
      // A session seen by the sampler is a use event (a lease that has not expired yet).
      const long = (await askWithX509(orders, 'pg', 'reader')).json()
      const longClient = new pg.Client({ connectionString: loginUrl(long.username, long.password) })
      await longClient.connect()
      await dynamic.sweep()
      await longClient.end()
      assert.ok(
        events.events.some((e) => e.type === 'dynamic.used' && e.data?.leaseId === long.leaseId),
      )
      assert.ok((await dynamic.get(long.leaseId)).firstUsedAt)
      // A crash between the lease row and the role: a pending row, and a role with no row.
      const orphanLease = '00000000-0000-4000-8000-000000000001'
      await store.db
        .insertInto('dynamic_lease')
        .values({
          id: orphanLease,
          backend: 'pg',
          backend_type: 'postgres',
          template: 'reader',
          username: 'tsr_0000000000_orphanpending',
          spiffe_id: orders,
          state: 'pending',
          created_at: new Date(Date.now() - 5000),
          expires_at: new Date(Date.now() + 600_000),
        })
        .execute()
      const stray = `tsr_${installation}_0000000000_${'abcdefghijkl'}`
      await fx.admin.query(`CREATE ROLE ${stray} LOGIN`)
      await fx.admin.query(`COMMENT ON ROLE ${stray} IS 'tessera dynamic lease lost for ${orders}'`)
      await new Promise((r) => setTimeout(r, 1100))
      const swept = await dynamic.sweep()
      assert.ok(swept.revoked >= 1, JSON.stringify(swept))
      assert.ok(swept.orphansRemoved >= 1, JSON.stringify(swept))
      const expired = await dynamic.get(leaseId)
      assert.equal(expired.state, 'revoked')
      assert.equal(expired.revokeReason, 'expired')
      assert.equal(await fx.roleExists(username), false)
      await assert.rejects(client.query('SELECT 1'))
      await client.end().catch(() => {})
      assert.equal((await dynamic.get(orphanLease)).revokeReason, 'orphan-pending')
      assert.equal(await fx.roleExists(stray), false)
      await eventually(async () => {
        const row = await store.db
          .selectFrom('credential')
          .select('state')
          .where('ref', '=', `dynamic:pg:${username}`)
          .where('valid_to', 'is', null)
          .executeTakeFirst()
        return row?.state === 'revoked'
      })
    })
  })
}
