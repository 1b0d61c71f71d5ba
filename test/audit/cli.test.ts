import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { createAuditLog } from '../../src/audit/audit-log.js'
import { localBackend } from '../../src/cli/backend.js'
import { runCli } from '../../src/cli/program.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'

function sink() {
  let text = ''
  const stream = new Writable({
    write(chunk: Buffer | string, _e, cb) {
      text += chunk.toString()
      cb()
    },
  })
  return { stream, text: () => text }
}

// The CLI over a local store (the last backend: PostgreSQL when configured, else PGlite).
const backend = testBackends().at(-1)!

describe(`tessera audit (${backend.name})`, () => {
  let store: Store
  const clock = createFixedClock('2026-11-23T10:04:00.000Z')

  before(async () => {
    store = await backend.open()
    const log = createAuditLog({ store, clock, partitionDaysAhead: 0 })
    for (let i = 0; i < 12; i++) {
      clock.advance(1000)
      await log.append({
        type: i % 3 === 0 ? 'entry.created' : 'authz.decision',
        actor: 'spiffe://example.org/reporting-bot',
        subject: `spiffe://example.org/w/${i % 2}`,
        resource: 'web-01',
        action: 'ssh:connect',
        decision: i === 7 ? 'deny' : 'allow',
        data: { i },
      })
    }
    await log.close()
  })
  after(async () => {
    await store.close()
  })

  const cli = async (...args: string[]) => {
    const out = sink()
    const err = sink()
    const code = await runCli(args, {
      stdout: out.stream,
      stderr: err.stream,
      clock,
      env: {},
      openBackend: async () => ({
        ...(await localBackend(store, clock, {})),
        close: async () => {},
      }),
    })
    return { code, out: out.text(), err: err.text() }
  }

  it('query filters by identity, type prefix, decision and time; pages with a cursor', async () => {
    const byId = await cli('audit', 'query', '--identity', 'spiffe://example.org/w/1', '--json')
    assert.equal(byId.code, 0)
    const items = JSON.parse(byId.out).items as { seq: number; subject: string }[]
    assert.equal(items.length, 6)
    assert.ok(items.every((e) => e.subject === 'spiffe://example.org/w/1'))
    const entries = JSON.parse((await cli('audit', 'query', '--type', 'entry.*', '--json')).out)
    assert.equal(entries.items.length, 4)
    const denied = JSON.parse((await cli('audit', 'query', '--decision', 'deny', '--json')).out)
    assert.deepEqual(
      denied.items.map((e: { seq: number }) => e.seq),
      [8],
    )
    const window = JSON.parse(
      (
        await cli(
          'audit',
          'query',
          '--from',
          '2026-11-23T10:04:02Z',
          '--to',
          '2026-11-23T10:04:04Z',
          '--order',
          'asc',
          '--json',
        )
      ).out,
    )
    assert.deepEqual(
      window.items.map((e: { seq: number }) => e.seq),
      [2, 3],
    )
    const first = JSON.parse((await cli('audit', 'query', '--limit', '5', '--json')).out)
    assert.deepEqual(
      first.items.map((e: { seq: number }) => e.seq),
      [12, 11, 10, 9, 8],
    )
    const second = JSON.parse(
      (await cli('audit', 'query', '--limit', '5', '--cursor', first.nextCursor, '--json')).out,
    )
    assert.deepEqual(
      second.items.map((e: { seq: number }) => e.seq),
      [7, 6, 5, 4, 3],
    )
    const table = await cli('audit', 'query', '--decision', 'deny')
    assert.match(table.out, /SEQ\s+AT\s+TYPE/)
    assert.match(table.out, /authz\.decision/)
    assert.equal((await cli('audit', 'query', '--type', 'Bad Type')).code, 2)
  })

  it('export: JSON Lines and RFC 5424 syslog, every matching event in order', async () => {
    const jsonl = await cli('audit', 'export', '--format', 'jsonl')
    const lines = jsonl.out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number })
    assert.deepEqual(
      lines.map((l) => l.seq),
      Array.from({ length: 12 }, (_, i) => i + 1),
    )
    const syslog = await cli(
      'audit',
      'export',
      '--format',
      'syslog',
      '--hostname',
      'cp-1',
      '--decision',
      'deny',
    )
    assert.match(
      syslog.out,
      /^<84>1 2026-11-23T10:04:08\.000Z cp-1 tessera - authz\.decision \[tessera@32473 seq="8" type="authz\.decision" actor="spiffe:\/\/example\.org\/reporting-bot" .*decision="deny" .*\] \{"i":7\}\n$/,
    )
  })

  it('export to a webhook: every event reaches the collector', async () => {
    const got: number[] = []
    const server: Server = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        assert.equal(req.headers['x-siem-key'], 'k1')
        for (const e of (JSON.parse(body) as { events: { seq: number }[] }).events) got.push(e.seq)
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
      const r = await cli(
        'audit',
        'export',
        '--webhook',
        url,
        '--webhook-header',
        'X-Siem-Key: k1',
        '--json',
      )
      assert.equal(r.code, 0, r.err)
      assert.deepEqual(JSON.parse(r.out), { exported: 12, failed: 0, webhook: url })
      assert.equal(got.length, 12)
    } finally {
      server.close()
    }
  })

  it('verify: exit 0 when intact; exit 1 naming the seq when an event was edited', async () => {
    const ok = await cli('audit', 'verify')
    assert.equal(ok.code, 0)
    assert.match(ok.out, /audit chain intact: 12 events, last seq 12/)
    await sql`update event set decision = 'allow' where seq = 8`.execute(store.db)
    const broken = await cli('audit', 'verify')
    assert.equal(broken.code, 1)
    assert.match(broken.out, /audit chain BROKEN: 1 problem\(s\) in 12 events/)
    assert.match(broken.out, /edited\s+seq 8 at 2026-11-23T10:04:08\.000Z/)
    const json = JSON.parse((await cli('audit', 'verify', '--json')).out)
    assert.equal(json.ok, false)
    assert.equal(json.issues[0].seq, 8)
  })
})
