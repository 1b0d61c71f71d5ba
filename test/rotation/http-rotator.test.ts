import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { httpRotatorModule } from '../../src/lifecycle/rotation/rotators/http.js'
import { systemClock } from '../../src/runtime/clock.js'

/** A webhook like a real system's: it rotates its own API key, with a flaky start. */
describe('HTTP rotator against a local webhook', () => {
  const received: { body: Record<string, unknown>; headers: IncomingMessage['headers'] }[] = []
  let failNext = 0
  let status = 503
  // keyId → key value, as the other system holds them.
  const keys = new Map<string, string>([['old', 'old-secret-value']])
  const server = createServer((req, res) => {
    let text = ''
    req.on('data', (c: Buffer) => (text += c.toString()))
    req.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>
      received.push({ body, headers: req.headers })
      if (failNext > 0) {
        failNext--
        res.statusCode = status
        return res.end('{"error":"busy"}')
      }
      if (req.headers.authorization !== 'Bearer hook-token') {
        res.statusCode = 401
        return res.end()
      }
      res.setHeader('content-type', 'application/json')
      switch (body.action) {
        case 'create': {
          const keyId = randomBytes(4).toString('hex')
          const key = `key-${randomBytes(12).toString('hex')}`
          keys.set(keyId, key)
          return res.end(JSON.stringify({ value: key, meta: { keyId } }))
        }
        case 'verify': {
          const next = body.next as { value: string }
          res.statusCode = [...keys.values()].includes(next.value) ? 200 : 422
          return res.end('{}')
        }
        case 'revoke':
          keys.delete((body.drop as { meta: { keyId: string } }).meta.keyId)
          return res.end('')
        default:
          return res.end('{}')
      }
    })
  })
  let url = ''
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rotate`
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  const sleeps: number[] = []
  const rotator = () =>
    httpRotatorModule.create(
      httpRotatorModule.parseConfig({ url, token: 'hook-token', attempts: 4, backoffMs: 50 }),
      {
        clock: systemClock,
        random: randomBytes,
        sleep: async (ms) => {
          sleeps.push(ms)
        },
      },
    )

  it('runs the documented protocol, retrying 5xx with exponential backoff', async () => {
    const r = rotator()
    const current = { value: 'old-secret-value', meta: { keyId: 'old' } }
    const ctx = { secretName: 'billing-api', rotationId: 'rot-1', current, resumed: false }
    failNext = 2
    status = 503
    const next = await r.create(ctx)
    assert.match(next.value, /^key-/)
    assert.deepEqual(sleeps, [50, 100])
    await r.verify(ctx, next)
    await r.activate(ctx, next, new Date('2026-11-23T12:10:00Z'))
    await r.revoke(ctx, next, current)
    assert.deepEqual([...keys.values()], [next.value])
    const sent = received.slice(-4)
    assert.deepEqual(
      sent.map((s) => s.body.action),
      ['create', 'verify', 'activate', 'revoke'],
    )
    assert.equal(sent[0]!.headers['idempotency-key'], 'rot-1:create')
    // Only verify is ever sent a secret value, and only the new one.
    const bodies = JSON.stringify(sent.map((s) => s.body))
    assert.equal(bodies.includes(current.value), false)
    const notVerify = JSON.stringify(
      sent.filter((s) => s.body.action !== 'verify').map((s) => s.body),
    )
    assert.equal(notVerify.includes(next.value), false)
    assert.deepEqual(sent[0]!.body.current, { meta: current.meta })
    assert.deepEqual(sent[1]!.body.next, next)
    assert.deepEqual(sent[2]!.body, {
      action: 'activate',
      rotationId: 'rot-1',
      secret: 'billing-api',
      next: { meta: next.meta },
      graceUntil: '2026-11-23T12:10:00.000Z',
    })
  })

  it('fails at once on a 4xx, and after the last attempt on 5xx', async () => {
    const r = rotator()
    const ctx = { secretName: 's', rotationId: 'rot-2', current: undefined, resumed: false }
    failNext = 1
    status = 400
    const before = received.length
    await assert.rejects(r.create(ctx), /HTTP 400/)
    assert.equal(received.length - before, 1)
    failNext = 10
    status = 500
    await assert.rejects(r.create(ctx), (e: Error & { code?: string }) => {
      return e.code === 'TSR_ROTATION_FAILED' && /HTTP 500/.test(e.message)
    })
    assert.equal(received.length - before, 5)
    failNext = 0
  })
})
