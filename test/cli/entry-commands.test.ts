import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { localBackend, type Backend } from '../../src/cli/backend.js'
import { runCli } from '../../src/cli/program.js'
import { createInventory } from '../../src/inventory/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import { hashJoinToken } from '../../src/attestation/join-tokens.js'
import { openStore, type Store } from '../../src/store/index.js'
import { Capture, tempDir } from './support.js'

const td = 'example.org'

/** Runs the CLI in-process, either on a local backend over `store` or against `--server`. */
function cli(store: Store, clock = createFixedClock('2026-05-01T00:00:00Z')) {
  let shared: Promise<Backend> | undefined
  const backend = async (): Promise<Backend> => ({
    ...(await (shared ??= localBackend(store, clock, { USER: 'test' }))),
    close: async () => {},
  })
  return async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const stdout = new Capture()
    const stderr = new Capture()
    const remote = args.includes('--server')
    const code = await runCli(args, {
      stdout,
      stderr,
      env: { TESSERA_CONFIG: `${tempDir()}/none.json`, ...env },
      clock,
      ...(remote ? {} : { openBackend: backend }),
    })
    return { code, stdout: stdout.text, stderr: stderr.text }
  }
}

describe('tessera entry / token / agent (local store and --server)', () => {
  let store: Store
  let app: FastifyInstance
  let url: string
  let admin: string
  let reader: string
  before(async () => {
    store = await openStore({ backend: 'pglite' })
    const clock = createFixedClock('2026-05-01T00:00:00Z')
    app = await buildApp({ store, clock, inventory: createInventory({ store, clock }) })
    await app.listen({ host: '127.0.0.1', port: 0 })
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    admin = (await createApiToken(store, { name: 'admin', scopes: ['admin'] })).token
    reader = (await createApiToken(store, { name: 'reader', scopes: ['read'] })).token
  })
  after(async () => {
    await app.close()
    await store.close()
  })

  for (const mode of ['local', 'remote'] as const) {
    it(`creates, lists, shows, updates and deletes entries (${mode})`, async () => {
      const run = cli(store)
      const remote = mode === 'remote' ? ['--server', url] : []
      const env = { TESSERA_TOKEN: admin }
      const created = await run(
        [
          ...remote,
          'entry',
          'create',
          '--spiffe-id',
          `spiffe://${td}/${mode}/web`,
          '--parent-id',
          `spiffe://${td}/spire/agent/join_token/x`,
          '--selector',
          'unix:uid:1000',
          '--selector',
          'unix:gid:50',
          '--owner',
          'team-web',
          '--x509-ttl',
          '30m',
          '--dns',
          'web.example.org',
          '--federates-with',
          'partner.org',
          '--expires-at',
          '30d',
          '--json',
        ],
        env,
      )
      assert.equal(created.code, 0, created.stderr)
      const entry = JSON.parse(created.stdout) as Record<string, unknown>
      assert.equal(entry.x509SvidTtl, 1800)
      assert.deepEqual(entry.selectors, [
        { type: 'unix', value: 'gid:50' },
        { type: 'unix', value: 'uid:1000' },
      ])
      assert.equal(entry.expiresAt, '2026-05-31T00:00:00.000Z')

      const list = await run(
        [...remote, 'entry', 'list', '--selector', 'unix:uid:1000', '--json'],
        env,
      )
      assert.equal(list.code, 0, list.stderr)
      const ids = (JSON.parse(list.stdout) as { items: { id: string }[] }).items.map((e) => e.id)
      assert.ok(ids.includes(entry.id as string))

      const human = await run([...remote, 'entry', 'list', '--owner', 'team-web'], env)
      assert.match(human.stdout, /SPIFFE ID/)
      assert.match(human.stdout, new RegExp(`${mode}/web`))

      const updated = await run(
        [...remote, 'entry', 'update', String(entry.id), '--hint', 'h1', '--clear', 'x509-ttl'],
        env,
      )
      assert.equal(updated.code, 0, updated.stderr)
      assert.match(updated.stdout, /updated entry/)
      const shown = await run([...remote, 'entry', 'show', String(entry.id), '--json'], env)
      const after = JSON.parse(shown.stdout) as Record<string, unknown>
      assert.equal(after.hint, 'h1')
      assert.equal(after.x509SvidTtl, undefined)
      assert.ok((after.revision as number) > (entry.revision as number))

      const deleted = await run([...remote, 'entry', 'delete', String(entry.id), '--json'], env)
      assert.equal(deleted.code, 0, deleted.stderr)
      const gone = await run([...remote, 'entry', 'show', String(entry.id)], env)
      assert.equal(gone.code, 1)
      assert.match(gone.stderr, /TSR_NOT_FOUND/)
    })

    it(`refuses an entry without an owner (${mode})`, async () => {
      const run = cli(store)
      const remote = mode === 'remote' ? ['--server', url] : []
      const res = await run(
        [
          ...remote,
          'entry',
          'create',
          '--spiffe-id',
          `spiffe://${td}/x`,
          '--parent-id',
          `spiffe://${td}/y`,
          '--selector',
          'unix:uid:1',
        ],
        { TESSERA_TOKEN: admin },
      )
      assert.equal(res.code, 2)
      assert.match(res.stderr, /--owner.*every entry has an owner/)
    })

    it(`creates a single-use join token, stored hashed (${mode})`, async () => {
      const run = cli(store)
      const remote = mode === 'remote' ? ['--server', url] : []
      const res = await run([...remote, 'token', 'create', '--ttl', '1h', '--json'], {
        TESSERA_TOKEN: admin,
      })
      assert.equal(res.code, 0, res.stderr)
      const { token } = JSON.parse(res.stdout) as { token: string }
      assert.match(token, /^tjt_/)
      const rows = await store.db.selectFrom('join_token').selectAll().execute()
      assert.ok(rows.some((r) => r.token_hash === hashJoinToken(token)))
      assert.ok(rows.every((r) => r.token_hash !== token))
    })
  }

  it('needs the admin scope for join tokens and write for entries over the API', async () => {
    const run = cli(store)
    const token = await run(['--server', url, 'token', 'create'], { TESSERA_TOKEN: reader })
    assert.equal(token.code, 1)
    assert.match(token.stderr, /TSR_AUTH_SCOPE/)
    const entry = await run(
      [
        '--server',
        url,
        'entry',
        'create',
        '--spiffe-id',
        `spiffe://${td}/x`,
        '--parent-id',
        `spiffe://${td}/y`,
        '--selector',
        'unix:uid:1',
        '--owner',
        'o',
      ],
      { TESSERA_TOKEN: reader },
    )
    assert.match(entry.stderr, /TSR_AUTH_SCOPE/)
  })

  it('lists and bans agents', async () => {
    const run = cli(store)
    const id = '00000000-0000-4000-8000-000000000001'
    await store.db
      .insertInto('agent')
      .values({
        id,
        spiffe_id: `spiffe://${td}/spire/agent/join_token/${id}`,
        attestation_type: 'join_token',
        selectors: JSON.stringify([{ type: 'join_token', value: 'x' }]),
      })
      .execute()
    const list = await run(['--server', url, 'agent', 'list', '--json'], { TESSERA_TOKEN: reader })
    assert.equal(list.code, 0, list.stderr)
    assert.equal((JSON.parse(list.stdout) as { items: unknown[] }).items.length, 1)
    const ban = await run(['--server', url, 'agent', 'ban', id], { TESSERA_TOKEN: admin })
    assert.equal(ban.code, 0, ban.stderr)
    const local = await run(['agent', 'list'])
    assert.match(local.stdout, /banned/)
  })
})
