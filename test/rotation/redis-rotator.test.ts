import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { createClient } from 'redis'
import { redisRotatorModule } from '../../src/lifecycle/rotation/rotators/redis.js'
import { systemClock } from '../../src/runtime/clock.js'
import { redisAdminUrl, redisFixture } from './support.js'

describe('Redis ACL rotator against the local Redis', () => {
  let fx: Awaited<ReturnType<typeof redisFixture>>
  before(async () => {
    fx = await redisFixture()
  })
  after(async () => fx?.cleanup())

  it('holds both passwords through the grace period, then only the new one; open connections stay', async () => {
    const rotator = redisRotatorModule.create(
      redisRotatorModule.parseConfig({ adminUrl: redisAdminUrl, username: fx.username }),
      { clock: systemClock, random: randomBytes },
    )
    const current = { value: fx.initial, meta: { username: fx.username } }
    const ctx = { secretName: 's', rotationId: 'r1', current, resumed: false }
    // A consumer connected with the old password before the rotation.
    const open = createClient({
      url: redisAdminUrl,
      username: fx.username,
      password: fx.initial,
      socket: { reconnectStrategy: false },
    })
    open.on('error', () => {})
    await open.connect()
    try {
      const next = await rotator.create(ctx)
      assert.notEqual(next.value, fx.initial)
      await rotator.verify(ctx, next)
      await rotator.activate(ctx, next, new Date())
      assert.equal(await fx.works(fx.initial), true, 'old password during the grace')
      assert.equal(await fx.works(next.value), true, 'new password during the grace')
      assert.equal(await fx.passwordCount(), 2)
      // A create run again after a crash replaces its orphan instead of adding a third password.
      const again = await rotator.create({ ...ctx, resumed: true })
      assert.equal(await fx.passwordCount(), 2)
      assert.equal(await fx.works(next.value), false, 'the orphan of the first attempt is gone')
      await rotator.revoke(ctx, again, current)
      await rotator.revoke(ctx, again, current) // idempotent
      assert.equal(await fx.works(fx.initial), false, 'old password refused after revocation')
      assert.equal(await fx.works(again.value), true)
      assert.equal(await fx.passwordCount(), 1)
      assert.equal(await open.set(`${fx.username}:k`, 'still here'), 'OK')
      // verify refuses a wrong password.
      await assert.rejects(
        rotator.verify(ctx, { value: 'wrong', meta: {} }),
        (e: Error & { code?: string }) => e.code === 'TSR_ROTATION_FAILED',
      )
    } finally {
      await open.close()
      await rotator.close?.()
    }
  })

  it('refuses a user that does not exist and bad configuration, naming every problem', async () => {
    const rotator = redisRotatorModule.create(
      redisRotatorModule.parseConfig({ adminUrl: redisAdminUrl, username: 'tsr_no_such_user' }),
      { clock: systemClock, random: randomBytes },
    )
    try {
      await assert.rejects(
        rotator.create({ secretName: 's', rotationId: 'r', current: undefined, resumed: false }),
        /does not exist/,
      )
    } finally {
      await rotator.close?.()
    }
    assert.throws(
      () => redisRotatorModule.parseConfig({ adminUrl: 'http://x', username: 'a b', extra: 1 }),
      (e: Error & { details?: { errors: string[] } }) => e.details?.errors.length === 3,
    )
  })
})
