import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { freshSchemaName, testBackends } from '../../test/support/stores.js'
import { isTesseraError } from '../errors.js'
import { copyText, openStore, type Store } from './store.js'
import { migrationNames, runMigrations } from './migrate.js'
import { templateCacheDir, templateFileName } from './pglite-template.js'
import { factTables } from './schema.js'

for (const backend of testBackends()) {
  describe(`${backend.name}: store`, () => {
    let store: Store
    before(async () => {
      store = await backend.open()
    })
    after(async () => {
      await store.close()
    })

    it('creates every table of the schema', async () => {
      const rows = await sql<{ table_name: string }>`
        select table_name from information_schema.tables
        where table_schema = current_schema() and table_type in ('BASE TABLE', 'PARTITIONED TABLE')
      `.execute(store.db)
      const names = new Set(rows.rows.map((r) => r.table_name))
      for (const t of [
        ...factTables,
        'usage',
        'registration_entry',
        'agent',
        'join_token',
        'ca_key',
        'issuance',
        'revocation',
        'event',
        'finding',
        'policy',
        'api_token',
        'setting',
        'discovery_run',
      ]) {
        assert.ok(names.has(t), `missing table ${t}`)
      }
    })

    it('is safe to migrate again', async () => {
      await runMigrations(store.db as never, store.backend)
      const r = await sql<{ n: number }>`select count(*)::int as n from kysely_migration`.execute(
        store.db,
      )
      assert.equal(r.rows[0]?.n, migrationNames.length)
    })

    it('bulk-inserts awkward text, arrays, json and nulls unchanged', async () => {
      const nasty = 'tab\there\nnewline \\backslash "quote" ünïcode'
      await store.bulkInsert(
        'resource',
        [
          'id',
          'ref',
          'source',
          'valid_from',
          'last_seen_at',
          'content_hash',
          'attributes',
          'resource_type',
          'name',
          'environment',
        ],
        [
          [
            '00000000-0000-4000-8000-000000000001',
            'r:1',
            's',
            new Date('2026-01-01T00:00:00Z'),
            new Date('2026-01-01T00:00:00Z'),
            'h',
            { note: nasty },
            'bucket',
            nasty,
            null,
          ],
        ],
      )
      await store.bulkInsert(
        'grant',
        [
          'id',
          'ref',
          'source',
          'valid_from',
          'last_seen_at',
          'content_hash',
          'identity_id',
          'identity_ref',
          'resource_id',
          'resource_ref',
          'actions',
        ],
        [
          [
            '00000000-0000-4000-8000-000000000002',
            'g:1',
            's',
            new Date(),
            new Date(),
            'h',
            '00000000-0000-4000-8000-000000000003',
            'i:1',
            '00000000-0000-4000-8000-000000000001',
            'r:1',
            ['s3:Get*', 'a "quoted", comma', 'back\\slash'],
          ],
        ],
      )
      const r = await store.db.selectFrom('resource').selectAll().executeTakeFirstOrThrow()
      assert.equal(r.name, nasty)
      assert.deepEqual(r.attributes, { note: nasty })
      assert.equal(r.environment, null)
      assert.equal(r.valid_to, null)
      const g = await store.db.selectFrom('grant').selectAll().executeTakeFirstOrThrow()
      assert.deepEqual(g.actions, ['s3:Get*', 'a "quoted", comma', 'back\\slash'])
      assert.equal(typeof g.version_id, 'number')
    })
  })
}

describe('copyText', () => {
  it('escapes the COPY text format specials', () => {
    assert.equal(copyText(null), '\\N')
    assert.equal(copyText('a\tb\nc\\d'), 'a\\tb\\nc\\\\d')
    assert.equal(copyText(['x', 'y"z']), '{"x","y\\\\"z"}')
  })
})

describe('pglite: data dir', () => {
  it('persists across reopen and refuses a second live opener', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-store-'))
    const first = await openStore({ backend: 'pglite', dataDir: dir })
    await first.db
      .insertInto('setting')
      .values({ key: 'k', value: JSON.stringify({ v: 1 }) })
      .execute()
    // Another process's pid in the lock file means the directory is in use.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'])
    try {
      await first.close()
      writeFileSync(join(dir, 'tessera.pid'), String(child.pid))
      await assert.rejects(openStore({ backend: 'pglite', dataDir: dir }), (err) =>
        isTesseraError(err, 'TSR_STORE_UNAVAILABLE'),
      )
    } finally {
      child.kill()
      await new Promise((r) => child.once('exit', r))
    }
    const second = await openStore({ backend: 'pglite', dataDir: dir })
    const row = await second.db.selectFrom('setting').selectAll().executeTakeFirstOrThrow()
    assert.deepEqual(row.value, { v: 1 })
    await second.close()
  })
})

const pgUrl = process.env.TESSERA_TEST_DATABASE_URL
describe(
  'postgres: concurrent migration',
  { skip: pgUrl ? false : 'TESSERA_TEST_DATABASE_URL not set' },
  () => {
    it('two processes migrating one fresh schema at once both succeed', async () => {
      const schema = freshSchemaName()
      const script = `
      import { openStore } from ${JSON.stringify(new URL('./store.ts', import.meta.url).href)}
      const s = await openStore({ backend: 'postgres', url: process.env.U, schema: process.env.S, poolSize: 2 })
      await s.close()
      console.log('migrated')`
      const runOne = () =>
        new Promise<string>((resolve, reject) => {
          const p = spawn(
            process.execPath,
            ['--import', 'tsx', '--input-type=module', '-e', script],
            {
              env: { ...process.env, U: pgUrl, S: schema },
            },
          )
          let out = ''
          let errText = ''
          p.stdout.on('data', (d) => (out += d))
          p.stderr.on('data', (d) => (errText += d))
          p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(errText))))
        })
      const outs = await Promise.all([runOne(), runOne()])
      assert.deepEqual(
        outs.map((o) => o.trim()),
        ['migrated', 'migrated'],
      )
      const s = await openStore({ backend: 'postgres', url: pgUrl!, schema })
      const r = await sql<{ n: number }>`select count(*)::int as n from kysely_migration`.execute(
        s.db,
      )
      assert.equal(r.rows[0]?.n, migrationNames.length)
      await s.close()
    })
  },
)

describe('pglite: template of a fresh cluster', () => {
  const saved = process.env.TESSERA_CACHE_DIR
  after(() => {
    if (saved === undefined) delete process.env.TESSERA_CACHE_DIR
    else process.env.TESSERA_CACHE_DIR = saved
  })

  it('writes a template on the first fresh open, starts later stores from it, and survives a damaged one', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'tessera-cache-'))
    process.env.TESSERA_CACHE_DIR = cache
    const file = join(cache, templateFileName())
    assert.equal(existsSync(file), false)

    const first = await openStore({ backend: 'pglite' })
    await first.db
      .insertInto('setting')
      .values({ key: 'k', value: JSON.stringify({ v: 1 }) })
      .execute()
    await first.close()
    assert.equal(existsSync(file), true)

    // From the template: migrated, empty (nothing the first store wrote afterwards), and writable.
    const dir = mkdtempSync(join(tmpdir(), 'tessera-tpl-'))
    const second = await openStore({ backend: 'pglite', dataDir: dir })
    assert.deepEqual(await second.db.selectFrom('setting').selectAll().execute(), [])
    const migrated = await sql<{
      n: number
    }>`select count(*)::int as n from kysely_migration`.execute(second.db)
    assert.equal(migrated.rows[0]?.n, migrationNames.length)
    await second.db
      .insertInto('setting')
      .values({ key: 'k', value: JSON.stringify({ v: 2 }) })
      .execute()
    await second.close()
    const reopened = await openStore({ backend: 'pglite', dataDir: dir })
    const row = await reopened.db.selectFrom('setting').selectAll().executeTakeFirstOrThrow()
    assert.deepEqual(row.value, { v: 2 })
    await reopened.close()

    writeFileSync(file, 'not a tar file')
    const third = await openStore({ backend: 'pglite' })
    assert.deepEqual(await third.db.selectFrom('setting').selectAll().execute(), [])
    await third.close()
    assert.notEqual(readFileSync(file, 'utf8').slice(0, 14), 'not a tar file')
  })

  it('is off with TESSERA_CACHE_DIR=off', () => {
    assert.equal(templateCacheDir({ TESSERA_CACHE_DIR: 'off' }), undefined)
    assert.equal(templateCacheDir({ XDG_CACHE_HOME: '/x' }), join('/x', 'tessera'))
  })
})
