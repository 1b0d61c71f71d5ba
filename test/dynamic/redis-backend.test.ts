import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { createClient } from 'redis'
import {
  dynamicPassword,
  dynamicUsername,
} from '../../src/lifecycle/dynamic/credential-material.js'
import { createRedisBackend } from '../../src/lifecycle/dynamic/redis-backend.js'
import { redisUrl } from './support.js'

const spiffeId = 'spiffe://example.org/ns/shop/sa/cache-reader'

describe('redis dynamic backend (local Redis)', () => {
  const backend = createRedisBackend({
    name: 'cache',
    url: redisUrl,
    templates: { reader: { allow: [], rules: ['~cache:*', '+get', '+mget', '+ping'] } },
  })
  const made: string[] = []
  const admin = createClient({ url: redisUrl })

  const create = async () => {
    const username = dynamicUsername(spiffeId)
    const password = dynamicPassword()
    made.push(username)
    await backend.create({
      username,
      password,
      template: 'reader',
      spiffeId,
      leaseId: randomUUID(),
      expiresAt: new Date(Date.now() + 600_000),
    })
    return { username, password }
  }
  const login = async (username: string, password: string) => {
    const c = createClient({
      url: redisUrl,
      username,
      password,
      socket: { reconnectStrategy: false },
    })
    c.on('error', () => {})
    await c.connect()
    return c
  }

  before(async () => {
    await admin.connect()
    await admin.set('cache:greeting', 'hello')
    await admin.set('secret:key', 'no')
  })
  after(async () => {
    for (const u of made) await backend.revoke(u).catch(() => {})
    await admin.del(['cache:greeting', 'secret:key'])
    await admin.quit()
    await backend.close()
  })

  it('makes a user that runs its allowed commands on its keys only', async () => {
    const { username, password } = await create()
    const c = await login(username, password)
    try {
      assert.equal(await c.get('cache:greeting'), 'hello')
      await assert.rejects(c.set('cache:greeting', 'x'), /NOPERM/)
      await assert.rejects(c.get('secret:key'), /NOPERM/)
      await assert.rejects(c.sendCommand(['FLUSHALL']), /NOPERM/)
      await assert.rejects(c.sendCommand(['ACL', 'LIST']), /NOPERM/)
      assert.equal(await c.sendCommand(['ACL', 'WHOAMI']).catch(() => 'denied'), 'denied')
    } finally {
      await c.quit()
    }
    // The ACL holds a hash, never the password itself.
    const rules = String(await admin.sendCommand(['ACL', 'GETUSER', username]))
    assert.ok(!rules.includes(password))
  })

  it('refuses a wrong password, and works from redis-cli', async () => {
    const { username, password } = await create()
    await assert.rejects(login(username, dynamicPassword()), /WRONGPASS/)
    const url = new URL(redisUrl)
    const out = execFileSync(
      'redis-cli',
      [
        '-h',
        url.hostname,
        '-p',
        url.port || '6379',
        '--user',
        username,
        '--pass',
        password,
        '--no-auth-warning',
        'GET',
        'cache:greeting',
      ],
      { encoding: 'utf8' },
    )
    assert.equal(out.trim(), 'hello')
  })

  it('revoking deletes the user and disconnects its clients; again is a no-op', async () => {
    const { username, password } = await create()
    const c = await login(username, password)
    assert.equal(await c.get('cache:greeting'), 'hello')
    assert.equal((await backend.sessions([username])).get(username), 1)
    const { sessionsTerminated } = await backend.revoke(username)
    assert.equal(sessionsTerminated, 1)
    assert.ok(!(await backend.listManaged('tsr_')).includes(username))
    await assert.rejects(login(username, password), /WRONGPASS/)
    await c.destroy()
    assert.deepEqual(await backend.revoke(username), { sessionsTerminated: 0 })
  })
})
