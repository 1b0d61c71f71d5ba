import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { startCa, type RunningCa } from '../../src/ca/start.js'
import { runCli } from '../../src/cli/program.js'
import { createInventory } from '../../src/inventory/index.js'
import {
  createDynamicCredentials,
  type DynamicCredentials,
} from '../../src/lifecycle/dynamic/dynamic-credentials.js'
import { parseDynamicConfig } from '../../src/lifecycle/dynamic/dynamic-config.js'
import { createDynamicBackends } from '../../src/lifecycle/dynamic/dynamic-registry.js'
import { systemClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import { openStore, type Store } from '../../src/store/index.js'
import { Capture, cliOn, tempDir } from '../cli/support.js'
import { loginUrl, pgAdminUrl, pgFixture } from './support.js'

const td = 'cli.example.org'
const workload = `spiffe://${td}/ns/shop/sa/api`

describe('tessera dynamic (CLI)', () => {
  let store: Store
  let ca: RunningCa
  let app: FastifyInstance
  let dynamic: DynamicCredentials
  let fx: Awaited<ReturnType<typeof pgFixture>>
  let url: string
  let writeToken: string
  const svidDir = tempDir()

  const remote = async (token: string | undefined, ...args: string[]) => {
    const stdout = new Capture()
    const stderr = new Capture()
    const code = await runCli(['--server', url, ...args], {
      stdout,
      stderr,
      clock: systemClock,
      env: {
        TESSERA_CONFIG: join(tempDir(), 'none.json'),
        ...(token ? { TESSERA_TOKEN: token } : {}),
      },
    })
    return { code, stdout: stdout.text, stderr: stderr.text }
  }
  const request = () =>
    remote(
      undefined,
      'dynamic',
      'request',
      'pg',
      '--template',
      'reader',
      '--svid-dir',
      svidDir,
      '--ttl',
      '5m',
      '--json',
    )

  before(async () => {
    store = await openStore({ backend: 'pglite' })
    ca = await startCa({
      store,
      clock: systemClock,
      trustDomain: td,
      kek: randomBytes(32).toString('base64'),
      tickMs: 3_600_000,
      warn: () => {},
    })
    fx = await pgFixture()
    const key = randomBytes(32)
    dynamic = createDynamicCredentials({
      store,
      clock: systemClock,
      backends: createDynamicBackends(
        parseDynamicConfig({
          backends: {
            pg: {
              type: 'postgres',
              url: pgAdminUrl,
              templates: { reader: { role: fx.templateRole, allow: [`spiffe://${td}/ns/shop/*`] } },
            },
          },
        }),
      ),
      events: createMemoryEventSink(),
      fingerprint: async (pw) => createHmac('sha256', key).update(pw).digest('hex'),
      installation: randomBytes(3).toString('hex'),
    })
    app = await buildApp({
      store,
      inventory: createInventory({ store }),
      ca: ca.ca,
      clock: systemClock,
      dynamic,
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    writeToken = (await createApiToken(store, { name: 'w', scopes: ['write'] })).token
    // The files "tessera svid fetch" writes: the chain and the PKCS#8 key.
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const [svid] = await ca.ca.signX509Svids([{ spiffeId: workload, publicKey }])
    writeFileSync(
      join(svidDir, 'svid.pem'),
      svid!.certChain.map((d) => new X509Certificate(d).toString()).join(''),
    )
    writeFileSync(
      join(svidDir, 'svid_key.pem'),
      privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      { mode: 0o600 },
    )
  })
  after(async () => {
    for (const l of await dynamic.list({ state: 'active' }))
      await dynamic.revoke(l.id).catch(() => {})
    await app.close()
    await dynamic.close()
    ca.stop()
    await store.close()
    await fx.cleanup()
  })

  it('request --svid-dir gets a working credential; revoke --lease drops it', async () => {
    const r = await request()
    assert.equal(r.code, 0, r.stderr)
    const issued = JSON.parse(r.stdout)
    assert.equal(issued.spiffeId, workload)
    const client = new pg.Client({ connectionString: loginUrl(issued.username, issued.password) })
    await client.connect()
    assert.equal((await client.query(`SELECT * FROM ${fx.schema}.orders`)).rowCount, 2)
    await client.end()

    const listed = await remote(writeToken, 'dynamic', 'leases', '--state', 'active', '--json')
    assert.equal(listed.code, 0, listed.stderr)
    assert.ok(JSON.parse(listed.stdout).items.some((l: { id: string }) => l.id === issued.leaseId))
    const table = await remote(writeToken, 'dynamic', 'leases')
    assert.match(table.stdout, new RegExp(issued.username))

    const revoked = await remote(writeToken, 'revoke', '--lease', issued.leaseId, '--json')
    assert.equal(revoked.code, 0, revoked.stderr)
    assert.equal(JSON.parse(revoked.stdout).state, 'revoked')
    assert.equal(await fx.roleExists(issued.username), false)
  })

  it('on a local store, revoke records the request and the reaper carries it out', async () => {
    const issued = JSON.parse((await request()).stdout)
    const cli = cliOn(store, systemClock)
    const r = await cli.run('dynamic', 'revoke', issued.leaseId, '--reason', 'rotation drill')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /revocation of lease .* requested/)
    assert.equal(await fx.roleExists(issued.username), true)
    await dynamic.sweep()
    const lease = await dynamic.get(issued.leaseId)
    assert.equal(lease.state, 'revoked')
    assert.equal(lease.revokeReason, 'rotation drill')
    assert.equal(await fx.roleExists(issued.username), false)
  })

  it('exits non-zero with the code when the proof is refused or the options are wrong', async () => {
    const bad = await remote(
      undefined,
      'dynamic',
      'request',
      'pg',
      '--template',
      'reader',
      '--svid-dir',
      tempDir(),
    )
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /TSR_VALIDATION/)
    const jwtFile = join(tempDir(), 'jwt')
    writeFileSync(jwtFile, 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA')
    const refused = await remote(
      undefined,
      'dynamic',
      'request',
      'pg',
      '--template',
      'reader',
      '--jwt-svid-file',
      jwtFile,
    )
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /TSR_DYNAMIC_UNAUTHENTICATED/)
  })
})
