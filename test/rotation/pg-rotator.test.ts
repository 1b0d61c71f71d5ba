import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { createSecretsService } from '../../src/lifecycle/rotation/secrets-service.js'
import { scramMatches } from '../../src/lifecycle/rotation/rotators/scram.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { openStore, type Store } from '../../src/store/index.js'
import { pgAdminUrl, pgFixture, testSealer } from './support.js'

const consumer = 'spiffe://example.org/app'

function poolFor(value: string) {
  const { username, password } = JSON.parse(value) as { username: string; password: string }
  const url = new URL(pgAdminUrl)
  url.username = username
  url.password = password
  // maxUses forces fresh connections (new logins) all along, not just the first few.
  return new pg.Pool({ connectionString: url.toString(), max: 3, maxUses: 10 })
}

describe('PostgreSQL rotator (dual-role) against the local server', () => {
  let store: Store
  let fx: Awaited<ReturnType<typeof pgFixture>>
  before(async () => {
    store = await openStore({ backend: 'pglite' })
    fx = await pgFixture()
  })
  after(async () => {
    await fx?.cleanup()
    await store?.close()
  })

  it('rotates while a pool runs queries without pause: no query fails; afterwards the old login is refused', async () => {
    const clock = createFixedClock('2026-11-23T12:00:00Z')
    const events = createMemoryEventSink()
    const service = createSecretsService({ store, sealer: testSealer(), clock, events })
    // Put under management blind: the first rotation makes login role _a the credential.
    await service.manage({
      name: 'orders-db',
      rotator: 'pg',
      config: { adminUrl: pgAdminUrl, role: fx.role },
      consumers: [consumer],
      periodSeconds: 86_400,
      graceSeconds: 600,
    })
    const first = await service.rotate('orders-db')
    assert.equal(first.state, 'grace')
    const v1 = await service.deliver('orders-db', [consumer])
    assert.equal(JSON.parse(v1.value).username, fx.logins[0])

    // The consumer: a pool on v1 and four loops querying through it until told to stop.
    let pool = poolFor(v1.value)
    const pools = [pool]
    let ok = 0
    const failures: string[] = []
    let stop = false
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          await pool.query(`insert into ${fx.table} (n) values (1)`)
          await pool.query(`select count(*) from ${fx.table}`)
          ok++
        } catch (err) {
          failures.push((err as Error).message)
        }
      }
    })
    const waitFor = async (n: number) => {
      const target = ok + n
      while (ok < target && failures.length === 0) await new Promise((r) => setTimeout(r, 5))
    }
    await waitFor(50)
    clock.advance(601_000)
    assert.equal((await service.engine.resumeOpen()).length, 1)

    // Second rotation while the pool (logged in as _a) keeps going.
    const second = await service.rotate('orders-db')
    assert.equal(second.state, 'grace')
    await waitFor(100)
    const v2 = await service.deliver('orders-db', [consumer])
    const u2 = JSON.parse(v2.value) as { username: string; password: string }
    assert.equal(u2.username, fx.logins[1])
    assert.equal(v2.previousValidUntil, new Date(clock.now().getTime() + 600_000).toISOString())
    // During the grace the old login still logs in (maxUses keeps opening connections) ...
    const old = await fx.roleState(fx.logins[0])
    assert.equal(old?.rolcanlogin, true)
    // ... and the real server holds exactly the new password for the new login.
    assert.ok(scramMatches((await fx.roleState(u2.username))?.rolpassword, u2.password))
    // The consumer picks up the new value within the grace period: a new pool, the old one drains.
    const next = poolFor(v2.value)
    pools.push(next)
    const previous = pool
    pool = next
    await waitFor(100)
    await previous.end()
    clock.advance(601_000)
    await service.tick()
    await waitFor(50)
    stop = true
    await Promise.all(loops)
    for (const p of pools.slice(1)) await p.end()

    assert.deepEqual(failures, [])
    assert.ok(ok >= 300, `ran ${ok} query pairs`)
    const revoked = await fx.roleState(fx.logins[0])
    assert.equal(revoked?.rolcanlogin, false)
    assert.equal(revoked?.rolpassword, null)
    // NOLOGIN holds even though this server trusts 127.0.0.1 (no password check).
    const url = new URL(pgAdminUrl)
    url.username = fx.logins[0]
    const c = new pg.Client({ connectionString: url.toString() })
    await assert.rejects(c.connect(), /not permitted to log in/)
    const shown = await service.show('orders-db')
    assert.equal(shown.version, 2)
    assert.equal(shown.rotations[0]?.state, 'done')
    assert.deepEqual(
      shown.rotations[0]?.steps.map((s) => s.state),
      ['pending', 'created', 'verified', 'activated', 'grace', 'revoked', 'done'],
    )
    const actions = events.events.filter((e) => e.type === 'rotation.step').map((e) => e.action)
    assert.deepEqual(actions.slice(-6), [
      'created',
      'verified',
      'activated',
      'grace',
      'revoked',
      'done',
    ])
  })
})
