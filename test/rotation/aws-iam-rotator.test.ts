import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { awsIamRotatorModule } from '../../src/lifecycle/rotation/rotators/aws-iam.js'
import { systemClock } from '../../src/runtime/clock.js'
import { startFakeIam, type FakeIam } from './fake-iam.js'

describe('AWS IAM access-key rotator against the local fake IAM endpoint', () => {
  let iam: FakeIam
  before(async () => {
    iam = await startFakeIam()
  })
  after(async () => iam?.close())

  const rotatorFor = (userName: string, extra: Record<string, unknown> = {}) =>
    awsIamRotatorModule.create(
      awsIamRotatorModule.parseConfig({
        userName,
        endpoint: iam.url,
        ...iam.admin,
        verifyDelayMs: 0,
        ...extra,
      }),
      { clock: systemClock, random: randomBytes, sleep: async () => {} },
    )
  const versionOf = (k: { accessKeyId: string; secretAccessKey: string }) => ({
    value: JSON.stringify({ accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey }),
    meta: { accessKeyId: k.accessKeyId },
  })

  it('creates, verifies with the new key, then deactivates and deletes the old one', async () => {
    const old = iam.addKey('svc-a')
    const r = rotatorFor('svc-a')
    const current = versionOf(old)
    const ctx = { secretName: 's', rotationId: 'r', current, resumed: false }
    const next = await r.create(ctx)
    assert.equal(iam.keysOf('svc-a').length, 2)
    await r.verify(ctx, next)
    // The verification call was signed by the new key itself.
    const newId = next.meta.accessKeyId as string
    assert.ok(iam.calls.some((c) => c.action === 'GetAccessKeyLastUsed' && c.accessKeyId === newId))
    await r.activate(ctx, next, new Date())
    assert.equal(iam.keysOf('svc-a').filter((k) => k.status === 'Active').length, 2)
    await r.revoke(ctx, next, current)
    await r.revoke(ctx, next, current) // idempotent: the old key is already gone
    assert.deepEqual(
      iam.keysOf('svc-a').map((k) => [k.accessKeyId, k.status]),
      [[newId, 'Active']],
    )
    const i = iam.calls.findIndex((c) => c.action === 'UpdateAccessKey')
    assert.equal(iam.calls[i + 1]?.action, 'DeleteAccessKey')
    await r.close?.()
  })

  it('at the 2-key limit deletes an inactive unmanaged key (documented rule), or fails when told to', async () => {
    const managed = iam.addKey('svc-b')
    const stale = iam.addKey('svc-b', 'Inactive')
    const ctx = { secretName: 's', rotationId: 'r', current: versionOf(managed), resumed: false }
    const strict = rotatorFor('svc-b', { onLimit: 'fail' })
    await assert.rejects(strict.create(ctx), (e: Error & { code?: string }) => {
      return e.code === 'TSR_ROTATION_LIMIT' && e.message.includes(stale.accessKeyId)
    })
    assert.equal(iam.keysOf('svc-b').length, 2)
    const r = rotatorFor('svc-b')
    const next = await r.create(ctx)
    assert.equal(iam.keys.has(stale.accessKeyId), false)
    assert.deepEqual(
      iam
        .keysOf('svc-b')
        .map((k) => k.accessKeyId)
        .sort(),
      [managed.accessKeyId, next.meta.accessKeyId].sort(),
    )
  })

  it('fails clearly when the other key is active and not managed, and the fake answers LimitExceeded at 2 keys', async () => {
    const managed = iam.addKey('svc-c')
    const foreign = iam.addKey('svc-c')
    const r = rotatorFor('svc-c')
    const ctx = { secretName: 's', rotationId: 'r', current: versionOf(managed), resumed: false }
    await assert.rejects(r.create(ctx), (e: Error & { code?: string }) => {
      return e.code === 'TSR_ROTATION_LIMIT' && e.message.includes(foreign.accessKeyId)
    })
    assert.equal(iam.keys.get(foreign.accessKeyId)?.status, 'Active', 'nothing touched')
    // Blind management (no current key known) reaches the service's own LimitExceeded.
    await assert.rejects(
      r.create({ ...ctx, current: undefined }),
      (e: Error & { code?: string }) => e.code === 'TSR_ROTATION_LIMIT',
    )
    // A resumed create treats an active unknown key as the orphan of the crashed attempt.
    const orphan = await r.create({ ...ctx, resumed: true }).catch((e: Error) => e)
    assert.ok(!(orphan instanceof Error))
    assert.equal(iam.keys.has(foreign.accessKeyId), false)
  })

  it('verify fails for a key that does not authenticate', async () => {
    const r = rotatorFor('svc-d', { verifyAttempts: 2 })
    iam.addUser('svc-d')
    const ctx = { secretName: 's', rotationId: 'r', current: undefined, resumed: false }
    await assert.rejects(
      r.verify(ctx, versionOf({ accessKeyId: 'AKIANOPE', secretAccessKey: 'x' })),
      (e: Error & { code?: string }) =>
        e.code === 'TSR_ROTATION_FAILED' && /InvalidClientTokenId/.test(e.message),
    )
  })
})
