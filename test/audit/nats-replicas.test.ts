import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import pg from 'pg'
import type { StoredAuditEvent } from '../../src/audit/event-sink.js'
import { startNatsEventConsumer, type NatsEventConsumer } from '../../src/audit/nats.js'
import { dropSchema } from '../support/stores.js'
import { schemaUrl, spawnServer, type ServerProcess } from './processes.js'

// PostgreSQL is what several replicas share: the test needs it (CI sets the URL).
const base = process.env.TESSERA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const natsUrl = process.env.TESSERA_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'

/**
 * Two `tessera server` processes on one PostgreSQL and one NATS JetStream: every durable event of
 * either replica reaches each consumer group exactly once, also when a group has two members.
 */
describe('event transport: two server processes, one PostgreSQL, one NATS', () => {
  const tag = randomBytes(4).toString('hex')
  const stream = `TSR_TEST_${tag}`
  const subject = `tsrtest.${tag}`
  let db: { url: string; schema: string }
  const servers: ServerProcess[] = []
  const consumers: NatsEventConsumer[] = []
  let admin: string

  before(async () => {
    db = await schemaUrl(base)
    const env = {
      TESSERA_KEK: randomBytes(32).toString('base64'),
      TESSERA_NATS_URL: natsUrl,
      TESSERA_NATS_STREAM: stream,
      TESSERA_NATS_SUBJECT: subject,
    }
    // One after the other: the first migrates the schema and prints the admin token.
    servers.push(
      await spawnServer(['--database', db.url, '--trust-domain', 'replicas.example'], env),
    )
    servers.push(await spawnServer(['--database', db.url], env))
    admin = servers[0]!.adminToken!
    assert.ok(admin)
    assert.equal(servers[1]!.adminToken, null)
  })
  after(async () => {
    for (const c of consumers) await c.stop().catch(() => {})
    for (const s of servers) await s.stop()
    const nc = await connect({ servers: natsUrl })
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => {})
    await nc.close()
    await dropSchema(base, db.schema).catch(() => {})
  })

  it('each group gets every event of both replicas exactly once', async () => {
    const groups = {
      detection: [[], []] as StoredAuditEvent[][],
      usage: [[]] as StoredAuditEvent[][],
    }
    for (const [group, members] of Object.entries(groups)) {
      for (const got of members) {
        consumers.push(
          await startNatsEventConsumer({
            servers: natsUrl,
            stream,
            subjectPrefix: subject,
            group: `${group}-${tag}`,
            observer: { observe: (events) => void got.push(...events) },
          }),
        )
      }
    }
    // 30 revocations, alternating between the replicas, 5 at a time.
    const sentTo = new Map<string, number>()
    for (let i = 0; i < 30; i += 5) {
      await Promise.all(
        Array.from({ length: 5 }, async (_, k) => {
          const n = i + k
          const value = `spiffe://replicas.example/revoked/${n}`
          const res = await fetch(`${servers[n % 2]!.url}/v1/revocations`, {
            method: 'POST',
            headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
            body: JSON.stringify({ targetType: 'spiffe_id', value }),
          })
          assert.equal(res.status, 201)
          sentTo.set(value, n % 2)
        }),
      )
    }
    // What the store holds is the truth to compare with.
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    let stored: number[]
    try {
      stored = (
        await client.query<{ seq: number }>('select seq::int from event order by seq')
      ).rows.map((r) => r.seq)
    } finally {
      await client.end()
    }
    assert.equal(stored.length, 60, '30 revocation.created + 30 admin.api events')
    const deadline = Date.now() + 30_000
    const union = (members: StoredAuditEvent[][]) => members.flat()
    while (
      (union(groups.detection).length < stored.length ||
        union(groups.usage).length < stored.length) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 100))
    }
    await new Promise((r) => setTimeout(r, 500)) // room for any duplicate to show up
    for (const [group, members] of Object.entries(groups)) {
      const seqs = union(members)
        .map((e) => e.seq)
        .sort((a, b) => a - b)
      assert.deepEqual(seqs, stored, `${group}: every stored event once`)
    }
    assert.ok(
      groups.detection.every((m) => m.length > 0),
      'both members of a group take a share',
    )
    // Both replicas' events are there: each revocation was made on a known replica.
    const revoked = union(groups.usage).filter((e) => e.type === 'revocation.created')
    const byReplica = [0, 1].map((r) => revoked.filter((e) => sentTo.get(e.subject!) === r).length)
    assert.deepEqual(byReplica, [15, 15])
  })
})
