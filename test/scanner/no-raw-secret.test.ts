import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, before, after } from 'node:test'
import { sql } from 'kysely'
import { localBackend, type Backend } from '../../src/cli/backend.js'
import { runCli } from '../../src/cli/program.js'
import { createInventory } from '../../src/inventory/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { loadStoreKey } from '../../src/scanner/index.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import type { Store } from '../../src/store/index.js'
import { Capture } from '../cli/support.js'
import { testBackends } from '../support/stores.js'
import { createRng, fakeMakers } from './fakes.js'
import { createRepo, tempDir } from './support.js'

const clock = createFixedClock(new Date('2026-01-05T09:00:00Z'))

/** Every row of every table of the store, as text: what a pg_dump would hold. */
async function dumpStore(store: Store): Promise<string> {
  const tables = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(store.db)
  let out = ''
  for (const { table_name } of tables.rows) {
    const rows = await sql`select * from ${sql.table(table_name)}`.execute(store.db)
    out += `${table_name}\n${JSON.stringify(rows.rows)}\n`
  }
  assert.ok(tables.rows.length >= 10)
  return out
}

function allFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir)) {
    const p = join(dir, e)
    if (e === '.git') continue
    if (statSync(p).isDirectory()) out.push(...allFiles(p))
    else out.push(p)
  }
  return out
}

for (const backend of testBackends()) {
  describe(`never a raw secret (${backend.name})`, () => {
    let store: Store
    const rng = createRng(4242)
    const secret = fakeMakers['github-pat']!.make(rng)
    const pem = fakeMakers['ec-private-key']!.make(rng)
    const pemBody = pem.split('\n')[1]!
    const repo = createRepo()
    const outDir = tempDir()
    const outputs: string[] = []

    const cli = async (...args: string[]) => {
      const stdout = new Capture()
      const stderr = new Capture()
      const b: Backend = { ...(await localBackend(store, clock, {})), close: async () => {} }
      const code = await runCli(args, {
        stdout,
        stderr,
        clock,
        env: { TESSERA_CONFIG: '/nonexistent/tessera.json' },
        openBackend: async () => b,
      })
      outputs.push(stdout.text, stderr.text)
      return { code, stdout: stdout.text, stderr: stderr.text }
    }

    before(async () => {
      store = await backend.open()
      repo.write('deploy/ci.env', `GITHUB_TOKEN=${secret}\n`)
      repo.write('ops/notes.md', `use ${secret} for the bot\n`)
      repo.write('keys/ec.pem', pem)
      repo.commit('add deploy config', {
        name: 'Carol Leaver',
        email: 'carol@acme.test',
        date: '2025-06-01T08:00:00+00:00',
      })
      repo.write('deploy/ci.env', 'GITHUB_TOKEN=${GITHUB_TOKEN}\n')
      repo.commit('remove token', {
        name: 'Dan',
        email: 'dan@acme.test',
        date: '2025-06-02T08:00:00+00:00',
      })
    })
    after(async () => {
      await store.close()
    })

    it('keeps the secret out of every output, the API and the database', async () => {
      for (const format of ['table', 'json', 'sarif']) {
        const r = await cli(
          'scan',
          repo.dir,
          '--history',
          '--ingest',
          '--format',
          format,
          '--output',
          join(outDir, `out.${format}`),
        )
        assert.equal(r.code, 1, r.stderr)
      }
      const json = JSON.parse(readFileSync(join(outDir, 'out.json'), 'utf8')) as {
        rule: string
        fingerprint: string
        file: string
        commit: string | null
        email: string | null
      }[]
      // One secret in three places (two files now, one deleted in history): one fingerprint.
      const gh = json.filter((f) => f.rule === 'github-pat')
      assert.equal(gh.length, 3)
      assert.equal(new Set(gh.map((f) => f.fingerprint)).size, 1)
      // The fingerprint is keyed with the store's installation key.
      const key = await loadStoreKey(store)
      const { fingerprintSecret } = await import('../../src/scanner/index.js')
      assert.equal(gh[0]!.fingerprint, fingerprintSecret(key, secret))

      const exported = await cli('inventory', 'export')
      assert.equal(exported.code, 0, exported.stderr)
      const app = await buildApp({
        store,
        inventory: createInventory({ store, clock }),
        clock,
        logger: { level: 'info', stream: { write: (s: string) => void outputs.push(s) } },
      })
      try {
        const token = (await createApiToken(store, { name: 'r', scopes: ['read'] }, clock)).token
        const headers = { authorization: `Bearer ${token}` }
        for (const url of ['/v1/identities', '/v1/export', '/v1/stats', '/v1/graph?limit=100']) {
          const res = await app.inject({ url, headers })
          outputs.push(res.body)
        }
      } finally {
        await app.close()
      }
      for (const f of allFiles(outDir)) outputs.push(readFileSync(f, 'utf8'))
      outputs.push(await dumpStore(store))
      const everything = outputs.join('\n')
      assert.ok(everything.includes(gh[0]!.fingerprint), 'the fingerprint is there')
      assert.ok(!everything.includes(secret), 'the raw token leaked')
      assert.ok(!everything.includes(secret.slice(4, 30)), 'a large part of the token leaked')
      assert.ok(!everything.includes(pemBody), 'the private key leaked')
    })

    it('ingests credentials, locations and the author as creator; a second ingest changes nothing', async () => {
      const r = await cli('scan', repo.dir, '--history', '--ingest', '--json')
      assert.equal(r.code, 1)
      assert.match(r.stderr, /inserted 0, changed 0, unchanged \d+/)
      const creds = await store.db.selectFrom('credential').selectAll().execute()
      assert.ok(
        creds.some(
          (c) =>
            c.fingerprint !== null && c.preview === `${secret.slice(0, 4)}…${secret.slice(-4)}`,
        ),
      )
      const locs = await store.db.selectFrom('credential_location').selectAll().execute()
      assert.ok(locs.length >= 4)
      const owners = await store.db.selectFrom('owner').selectAll().execute()
      assert.deepEqual(
        owners.map((o) => o.email),
        ['carol@acme.test'],
      )
      const edges = await store.db
        .selectFrom('edge')
        .selectAll()
        .where('edge_type', '=', 'created')
        .execute()
      assert.equal(edges.length, 2)
      assert.ok(!(await dumpStore(store)).includes(secret))
    })

    it('ingests through a server with --server (REST /v1/observations)', async () => {
      const app = await buildApp({
        store,
        inventory: createInventory({ store, clock }),
        clock,
        logger: { level: 'info', stream: { write: (s: string) => void outputs.push(s) } },
      })
      try {
        const address = await app.listen({ host: '127.0.0.1', port: 0 })
        const token = (await createApiToken(store, { name: 'w', scopes: ['write'] }, clock)).token
        const repo2 = createRepo()
        const other = fakeMakers['sendgrid-api-key']!.make(createRng(31))
        repo2.write('mail.py', `SENDGRID = "${other}"\n`)
        repo2.commit('mail', {
          name: 'Eve',
          email: 'eve@acme.test',
          date: '2025-07-01T00:00:00+00:00',
        })
        const stdout = new Capture()
        const stderr = new Capture()
        const code = await runCli(['scan', repo2.dir, '--history', '--server', address, '--json'], {
          stdout,
          stderr,
          clock,
          env: {
            TESSERA_CONFIG: '/nonexistent/tessera.json',
            TESSERA_TOKEN: token,
            TESSERA_SCANNER_KEY: Buffer.alloc(32, 5).toString('hex'),
          },
        })
        assert.equal(code, 1, stderr.text)
        assert.match(stderr.text, /ingested \d+ observations .*inserted [1-9]/)
        const owners = await store.db.selectFrom('owner').select('email').execute()
        assert.ok(owners.some((o) => o.email === 'eve@acme.test'))
        const all = stdout.text + stderr.text + (await dumpStore(store))
        assert.ok(!all.includes(other))
      } finally {
        await app.close()
      }
    })
  })
}
