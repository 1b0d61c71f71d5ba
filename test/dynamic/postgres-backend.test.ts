import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import {
  dynamicPassword,
  dynamicUsername,
  workloadTag,
} from '../../src/lifecycle/dynamic/credential-material.js'
import type { DynamicBackend } from '../../src/lifecycle/dynamic/dynamic-backend.js'
import { createPostgresBackend } from '../../src/lifecycle/dynamic/postgres-backend.js'
import { pgFixture, startScramPostgres } from './support.js'

const spiffeId = 'spiffe://example.org/ns/shop/sa/orders-api'

describe('postgres dynamic backend (local PostgreSQL)', () => {
  let fx: Awaited<ReturnType<typeof pgFixture>>
  let backend: DynamicBackend
  let cluster: Awaited<ReturnType<typeof startScramPostgres>>
  let pgAdminUrl: string
  const loginUrl = (u: string, p: string) => cluster.loginUrl(u, p)
  const made: string[] = []

  const create = async (expiresInMs = 600_000) => {
    const username = dynamicUsername(spiffeId)
    const password = dynamicPassword()
    made.push(username)
    await backend.create({
      username,
      password,
      template: 'reader',
      spiffeId,
      leaseId: randomUUID(),
      expiresAt: new Date(Math.floor((Date.now() + expiresInMs) / 1000) * 1000),
    })
    return { username, password }
  }

  before(async () => {
    cluster = await startScramPostgres()
    pgAdminUrl = cluster.adminUrl
    fx = await pgFixture(pgAdminUrl)
    backend = createPostgresBackend({
      name: 'pg-test',
      url: pgAdminUrl,
      templates: { reader: { allow: [], role: fx.templateRole } },
    })
  })
  after(async () => {
    for (const u of made) await backend.revoke(u).catch(() => {})
    await backend.close()
    await fx.cleanup()
    await cluster.stop()
  })

  it('names the role after the workload, within PostgreSQL limits', async () => {
    const name = dynamicUsername(spiffeId)
    assert.match(name, /^tsr_[0-9a-f]{10}_[a-z2-7]{12}$/)
    assert.ok(name.length <= 63)
    assert.ok(name.startsWith(`tsr_${workloadTag(spiffeId)}_`))
    assert.notEqual(dynamicUsername(spiffeId), name)
  })

  it('makes a role that can connect and do exactly its template grants', async () => {
    const { username, password } = await create()
    const client = new pg.Client({ connectionString: loginUrl(username, password) })
    await client.connect()
    try {
      const rows = await client.query(`SELECT item FROM ${fx.schema}.orders ORDER BY id`)
      assert.deepEqual(
        rows.rows.map((r) => r.item),
        ['tea', 'cake'],
      )
      await assert.rejects(client.query(`INSERT INTO ${fx.schema}.orders VALUES (3, 'pie')`), {
        code: '42501',
      })
      await assert.rejects(client.query(`SELECT * FROM ${fx.schema}.secrets`), { code: '42501' })
      await assert.rejects(client.query(`CREATE TABLE ${fx.schema}.mine (x int)`), {
        code: '42501',
      })
      // The database's own view attributes the session to the workload.
      const me = await client.query<{ u: string; app: string }>(
        'SELECT current_user AS u, current_setting($1) AS app',
        ['application_name'],
      )
      assert.equal(me.rows[0]!.u, username)
      assert.equal(me.rows[0]!.app, spiffeId)
    } finally {
      await client.end()
    }
    const meta = await fx.admin.query<{ comment: string; until: Date; super: boolean }>(
      `SELECT shobj_description(oid, 'pg_authid') AS comment, rolvaliduntil AS until,
              rolsuper AS super FROM pg_roles WHERE rolname = $1`,
      [username],
    )
    assert.match(
      meta.rows[0]!.comment,
      new RegExp(`^tessera dynamic lease [0-9a-f-]{36} for ${spiffeId}$`),
    )
    assert.equal(meta.rows[0]!.super, false)
    assert.ok(meta.rows[0]!.until.getTime() > Date.now())
  })

  it('checks the password: a wrong one is refused', async () => {
    const { username } = await create()
    const client = new pg.Client({ connectionString: loginUrl(username, dynamicPassword()) })
    await assert.rejects(client.connect(), /password authentication failed/)
  })

  it('works from psql, the real client', async () => {
    const { username, password } = await create()
    const out = execFileSync(
      'psql',
      [loginUrl(username, password), '-Atc', `SELECT count(*) FROM ${fx.schema}.orders`],
      { encoding: 'utf8' },
    )
    assert.equal(out.trim(), '2')
  })

  it('never sends the clear password: the role holds a SCRAM verifier', async () => {
    const { username, password } = await create()
    const row = await fx.admin.query<{ p: string }>(
      'SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1',
      [username],
    )
    assert.match(row.rows[0]!.p, /^SCRAM-SHA-256\$4096:/)
    assert.ok(!row.rows[0]!.p.includes(password))
  })

  it('revoking ends live sessions, drops the role, and is idempotent', async () => {
    const { username, password } = await create()
    const client = new pg.Client({ connectionString: loginUrl(username, password) })
    client.on('error', () => {})
    await client.connect()
    await client.query('SELECT 1')
    assert.equal((await backend.sessions([username])).get(username), 1)
    const { sessionsTerminated } = await backend.revoke(username)
    assert.equal(sessionsTerminated, 1)
    await assert.rejects(client.query('SELECT 1'))
    await client.end().catch(() => {})
    assert.equal(await fx.roleExists(username), false)
    assert.deepEqual(await backend.revoke(username), { sessionsTerminated: 0 })
    const again = new pg.Client({ connectionString: loginUrl(username, password) })
    await assert.rejects(again.connect())
  })

  it('reassigns what the role created before dropping it', async () => {
    const writer = createPostgresBackend({
      name: 'pg-writer',
      url: pgAdminUrl,
      templates: {
        creator: {
          allow: [],
          statements: [`GRANT CREATE, USAGE ON SCHEMA ${fx.schema} TO {{role}}`],
        },
      },
    })
    try {
      const username = dynamicUsername(spiffeId)
      const password = dynamicPassword()
      await writer.create({
        username,
        password,
        template: 'creator',
        spiffeId,
        leaseId: randomUUID(),
        expiresAt: new Date(Date.now() + 600_000),
      })
      const client = new pg.Client({ connectionString: loginUrl(username, password) })
      await client.connect()
      await client.query(`CREATE TABLE ${fx.schema}.made_by_jit (x int)`)
      await client.end()
      await writer.revoke(username)
      assert.equal(await fx.roleExists(username), false)
      const owner = await fx.admin.query<{ o: string }>(
        `SELECT tableowner AS o FROM pg_tables WHERE schemaname = $1 AND tablename = 'made_by_jit'`,
        [fx.schema],
      )
      assert.equal(owner.rows[0]!.o, new URL(pgAdminUrl).username)
    } finally {
      await writer.close()
    }
  })

  it('PostgreSQL itself refuses a login after VALID UNTIL, even with Tessera away', async () => {
    const { username, password } = await create(1000)
    await new Promise((r) => setTimeout(r, 2100))
    const client = new pg.Client({ connectionString: loginUrl(username, password) })
    await assert.rejects(client.connect(), /password authentication failed/)
  })

  it('lists only the roles it made (by their comment)', async () => {
    const { username } = await create()
    await fx.admin.query(`CREATE ROLE tsr_not_ours_${fx.schema.slice(4)} NOLOGIN`)
    try {
      const listed = await backend.listManaged('tsr_')
      assert.ok(listed.includes(username))
      assert.ok(!listed.some((n) => n.startsWith('tsr_not_ours_')))
    } finally {
      await fx.admin.query(`DROP ROLE tsr_not_ours_${fx.schema.slice(4)}`)
    }
  })
})
