import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { dropSchema } from '../support/stores.js'
import { schemaUrl, spawnServer, type ServerProcess } from './processes.js'

// PostgreSQL is what a crashed replica's events must survive in (CI sets the URL).
const base = process.env.TESSERA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Crash test: a burst of requests whose answers come only after their events are durable
 * (revocations and entry creations), SIGKILL mid-burst, restart; every acknowledged event must be
 * in the log, and `tessera audit verify` must find the chain intact.
 */
describe('audit durability across a SIGKILL', () => {
  let db: { url: string; schema: string }
  const env = { TESSERA_KEK: randomBytes(32).toString('base64') }
  let server: ServerProcess | undefined

  before(async () => {
    db = await schemaUrl(base)
  })
  after(async () => {
    await server?.kill()
    await dropSchema(base, db.schema).catch(() => {})
  })

  it('every acknowledged event survives, and the chain verifies after the restart', async () => {
    server = await spawnServer(['--database', db.url, '--trust-domain', 'crash.example'], env)
    const admin = server.adminToken!
    const url = server.url
    const acked: { kind: 'revocation' | 'entry'; value: string }[] = []
    let attempted = 0
    let killedAt = -1
    let inFlight = 0
    let inFlightAtKill = 0
    const post = async (i: number) => {
      attempted++
      inFlight++
      const revocation = i % 2 === 0
      const value = `spiffe://crash.example/burst/${i}`
      try {
        const res = await fetch(url + (revocation ? '/v1/revocations' : '/v1/entries'), {
          method: 'POST',
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body: JSON.stringify(
            revocation
              ? { targetType: 'spiffe_id', value }
              : {
                  spiffeId: value,
                  parentId: 'spiffe://crash.example/spire/agent/join_token/x',
                  selectors: [`unix:uid:${i}`],
                  owner: 'team-crash',
                },
          ),
        })
        await res.arrayBuffer()
        if (res.status === 201) acked.push({ kind: revocation ? 'revocation' : 'entry', value })
        inFlight--
      } catch {
        // The connection died with the server: not acknowledged.
      }
    }
    // 16 callers in parallel; the server dies once 150 answers are in, while requests are in flight.
    let next = 0
    const victim = server
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < 2000 && killedAt < 0) {
          await post(next++)
          if (acked.length >= 150 && killedAt < 0) {
            killedAt = acked.length
            inFlightAtKill = inFlight
            victim.child.kill('SIGKILL')
          }
        }
      }),
    )
    await victim.kill()
    assert.ok(killedAt >= 150)
    // The other workers each had a request outstanding when the server died: the kill came mid-burst.
    // (Some of those may still have been answered before the process died; they count as acked.)
    assert.ok(inFlightAtKill > 0, 'some requests were in flight at the kill')
    assert.ok(attempted >= acked.length)

    server = await spawnServer(['--database', db.url], env)
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    try {
      const rows = (
        await client.query<{ event_type: string; subject: string }>(
          `select event_type, subject from event where event_type in ('revocation.created', 'entry.created')`,
        )
      ).rows
      const logged = new Set(rows.map((r) => `${r.event_type}|${r.subject}`))
      const missing = acked.filter(
        (a) =>
          !logged.has(
            `${a.kind === 'revocation' ? 'revocation.created' : 'entry.created'}|${a.value}`,
          ),
      )
      assert.deepEqual(missing, [], 'every acknowledged request has its event')
      const admins = await client.query<{ n: number }>(
        `select count(*)::int as n from event where event_type = 'admin.api' and (data->>'status')::int = 201`,
      )
      assert.ok(admins.rows[0]!.n >= acked.length, 'and its admin.api event')
    } finally {
      await client.end()
    }
    // `tessera audit verify` on the store, as an operator would run it.
    const verify = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'verify', '--database', db.url, '--json'],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
      )
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      child.on('close', (code) => resolve({ code, out }))
    })
    assert.equal(verify.code, 0, verify.out)
    const result = JSON.parse(verify.out) as { ok: boolean; checked: number }
    assert.equal(result.ok, true)
    assert.ok(result.checked >= 2 * acked.length)
  })
})
