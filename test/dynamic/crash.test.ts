import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { startCa } from '../../src/ca/start.js'
import { signWorkloadProof } from '../../src/lifecycle/dynamic/workload-auth.js'
import { systemClock } from '../../src/runtime/clock.js'
import { openStore } from '../../src/store/index.js'
import { eventually, pgAdminUrl, pgFixture } from './support.js'

/**
 * The lease table's promise, with real processes: a `tessera server` issues a JIT role and is
 * killed with SIGKILL; a new server, started after the role expired, drops it (and sweeps what a
 * crash mid-request would leave: a pending lease, a role with no lease).
 */
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const td = 'crash.example.org'
const workload = `spiffe://${td}/ns/shop/sa/orders`

function startServer(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'server',
      '--port',
      '0',
      '--json',
      '--log-level',
      'warn',
    ],
    { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve({ child, url: (JSON.parse(out.slice(0, nl)) as { url: string }).url })
    })
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)))
  })
}

describe('JIT roles are dropped after expiry even when the server was killed', () => {
  const dbName = `tessera_dyn_crash_${randomBytes(4).toString('hex')}`
  const adminBase = new URL(pgAdminUrl)
  const storeUrl = Object.assign(new URL(pgAdminUrl), { pathname: `/${dbName}` }).toString()
  const kek = randomBytes(32).toString('base64')
  const installation = randomBytes(3).toString('hex')
  let fx: Awaited<ReturnType<typeof pgFixture>>
  let env: NodeJS.ProcessEnv
  const children: ChildProcess[] = []

  before(async () => {
    const admin = new pg.Client({ connectionString: adminBase.toString() })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${dbName}`)
    await admin.end()
    fx = await pgFixture()
    const dir = mkdtempSync(join(tmpdir(), 'tsr-crash-'))
    const configFile = join(dir, 'dynamic.yaml')
    writeFileSync(
      configFile,
      [
        'reaperIntervalSeconds: 1',
        'pendingGraceSeconds: 1',
        `installation: "${installation}"`,
        'backends:',
        '  pg:',
        '    type: postgres',
        '    urlEnv: JIT_PG_ADMIN_URL',
        '    templates:',
        '      reader:',
        `        role: ${fx.templateRole}`,
        `        allow: ["spiffe://${td}/ns/shop/*"]`,
        '',
      ].join('\n'),
    )
    env = { ...process.env }
    for (const k of ['TESSERA_SERVER', 'TESSERA_TOKEN', 'TESSERA_DATABASE_URL']) delete env[k]
    Object.assign(env, {
      TESSERA_DATABASE_URL: storeUrl,
      TESSERA_KEK: kek,
      TESSERA_TRUST_DOMAIN: td,
      TESSERA_DYNAMIC_CONFIG: configFile,
      JIT_PG_ADMIN_URL: pgAdminUrl,
      TESSERA_CONFIG: join(dir, 'cli.json'),
    })
  })
  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
    await fx.cleanup()
    const admin = new pg.Client({ connectionString: adminBase.toString() })
    await admin.connect()
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
    await admin.end()
  })

  it(
    'issues, is SIGKILLed, and the next server drops the expired role and the orphans',
    { timeout: 300_000 },
    async (t) => {
      const started = Date.now()
      const step = (what: string) => t.diagnostic(`${Date.now() - started} ms: ${what}`)
      const first = await startServer(env)
      children.push(first.child)
      step('first server up')
      // The workload's SVID, from the same CA (same store, same KEK).
      const store = await openStore({ backend: 'postgres', url: storeUrl })
      const ca = await startCa({
        store,
        clock: systemClock,
        kek,
        tickMs: 3_600_000,
        warn: () => {},
      })
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const [svid] = await ca.ca.signX509Svids([{ spiffeId: workload, publicKey }])
      ca.stop()
      const path = '/v1/dynamic/pg'
      const body = JSON.stringify({ template: 'reader', ttlSeconds: 3 })
      const proof = await signWorkloadProof({
        chain: svid!.certChain,
        key: privateKey,
        method: 'POST',
        pathAndQuery: path,
        body,
        now: new Date(),
      })
      const res = await fetch(first.url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${proof}` },
        body,
      })
      assert.equal(res.status, 201, await res.clone().text())
      const issued = (await res.json()) as { username: string; leaseId: string; expiresAt: string }
      assert.equal(await fx.roleExists(issued.username), true)
      step('credential issued')

      first.child.kill('SIGKILL')
      await new Promise((r) => first.child.once('exit', r))
      // What a crash in the middle of a request leaves: a pending lease, and a role with no lease.
      await store.db
        .insertInto('dynamic_lease')
        .values({
          id: '00000000-0000-4000-8000-0000000000aa',
          backend: 'pg',
          backend_type: 'postgres',
          template: 'reader',
          username: 'tsr_crash00000_pendingrow',
          spiffe_id: workload,
          state: 'pending',
          created_at: new Date(),
          expires_at: new Date(Date.now() + 600_000),
        })
        .execute()
      const stray = `tsr_${installation}_c0ffee0000_${'strayrole234'}`
      await fx.admin.query(`CREATE ROLE ${stray} LOGIN`)
      await fx.admin.query(
        `COMMENT ON ROLE ${stray} IS 'tessera dynamic lease lost for ${workload}'`,
      )
      // Past the expiry with no server running: nothing has dropped the role.
      await new Promise((r) =>
        setTimeout(r, Math.max(0, Date.parse(issued.expiresAt) - Date.now()) + 500),
      )
      assert.equal(await fx.roleExists(issued.username), true)

      const second = await startServer(env)
      children.push(second.child)
      step('second server up')
      await eventually(async () => !(await fx.roleExists(issued.username)), 30_000)
      await eventually(async () => !(await fx.roleExists(stray)), 30_000)
      const leases = await store.db
        .selectFrom('dynamic_lease')
        .select(['id', 'state', 'revoke_reason'])
        .orderBy('id')
        .execute()
      const byId = new Map(leases.map((l) => [l.id, l]))
      assert.deepEqual(
        { ...byId.get(issued.leaseId) },
        { id: issued.leaseId, state: 'revoked', revoke_reason: 'expired' },
      )
      await eventually(async () => {
        const row = await store.db
          .selectFrom('dynamic_lease')
          .select(['state', 'revoke_reason'])
          .where('id', '=', '00000000-0000-4000-8000-0000000000aa')
          .executeTakeFirstOrThrow()
        return row.state === 'revoked' && row.revoke_reason === 'orphan-pending'
      })
      second.child.kill('SIGTERM')
      await new Promise((r) => second.child.once('exit', r))
      await store.close()
    },
  )
})
