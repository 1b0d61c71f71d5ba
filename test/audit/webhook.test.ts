import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { ChainedEvent } from '../../src/audit/chain.js'
import { createWebhookSink } from '../../src/audit/webhook.js'

function events(from: number, n: number): ChainedEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    seq: from + i,
    at: new Date('2026-11-23T10:04:00Z'),
    type: 'entry.created',
    subject: `spiffe://example.org/w/${from + i}`,
    data: {},
    prevHash: '0'.repeat(64),
    hash: '1'.repeat(64),
  }))
}

const body = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = ''
    req.on('data', (c) => (text += c))
    req.on('end', () => resolve(text))
  })

describe('webhook sink (a local SIEM collector)', () => {
  let server: Server
  let url: string
  const received: number[] = []
  const statuses: number[] = []
  let plan: number[] = []
  const headersSeen: string[] = []

  before(async () => {
    server = createServer(async (req, res) => {
      const text = await body(req)
      headersSeen.push(String(req.headers.authorization))
      const status = plan.shift() ?? 200
      statuses.push(status)
      if (status === 200) {
        const parsed = JSON.parse(text) as { events: { seq: number }[] }
        for (const e of parsed.events) received.push(e.seq)
      }
      res.writeHead(status, status === 429 ? { 'retry-after': '1' } : {}).end()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/collector`
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  it('posts batches in order, retrying 503 and 429 with backoff until they land', async () => {
    received.length = 0
    statuses.length = 0
    plan = [503, 429, 200, 503, 200]
    const sleeps: number[] = []
    const sink = createWebhookSink({
      url,
      batchSize: 40,
      headers: { authorization: 'Splunk abc' },
      sleep: async (ms) => void sleeps.push(ms),
      random: () => 1,
    })
    sink.observe(events(1, 50))
    sink.observe(events(51, 30))
    await sink.flush()
    assert.deepEqual(
      received,
      Array.from({ length: 80 }, (_, i) => i + 1),
    )
    assert.deepEqual(statuses, [503, 429, 200, 503, 200])
    assert.deepEqual(sleeps, [250, 1000, 250], 'exponential backoff; Retry-After honoured')
    assert.equal(headersSeen.at(-1), 'Splunk abc')
    assert.deepEqual(sink.stats(), { delivered: 80, failed: 0, attempts: 5 })
  })

  it('gives up on a 4xx at once and after the retries on a 5xx, and says so', async () => {
    received.length = 0
    plan = [400, 500, 500, 500]
    const errors: [string, number][] = []
    const sink = createWebhookSink({
      url,
      batchSize: 10,
      retries: 2,
      sleep: async () => {},
      onError: (err, n) => void errors.push([err.code, n]),
    })
    sink.observe(events(1, 10))
    sink.observe(events(11, 10))
    sink.observe(events(21, 5))
    await sink.flush()
    assert.deepEqual(errors, [
      ['TSR_CLIENT_HTTP', 10],
      ['TSR_CLIENT_HTTP', 10],
    ])
    assert.deepEqual(received, [21, 22, 23, 24, 25])
    assert.deepEqual(sink.stats(), { delivered: 5, failed: 20, attempts: 5 })
  })

  it('retries a collector that is down (connection refused)', async () => {
    const attempts: number[] = []
    const sink = createWebhookSink({
      url: 'http://127.0.0.1:1/none',
      retries: 3,
      sleep: async (ms) => void attempts.push(ms),
      random: () => 0,
      onError: () => {},
    })
    sink.observe(events(1, 1))
    await sink.flush()
    assert.deepEqual(attempts, [125, 250, 500])
    assert.equal(sink.stats().failed, 1)
  })

  it('refuses a URL that is not http(s)', () => {
    assert.throws(() => createWebhookSink({ url: 'ftp://x' }), { code: 'TSR_VALIDATION' })
  })
})
