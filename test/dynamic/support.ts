import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The PostgreSQL server the JIT roles are made in (the test database of this worktree). */
export const pgAdminUrl =
  process.env.TESSERA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const redisUrl = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A login URL for a JIT role on the same server and database. */
export function loginUrl(username: string, password: string): string {
  const u = new URL(pgAdminUrl)
  u.username = username
  u.password = password
  return u.toString()
}

/**
 * A schema with two tables and a template role that may read only `orders`: what a JIT role
 * granted the template may do, and may not.
 */
export async function pgFixture(adminUrl = pgAdminUrl) {
  const tag = randomBytes(4).toString('hex')
  const schema = `jit_${tag}`
  const templateRole = `jit_reader_${tag}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.query(`CREATE TABLE ${schema}.orders (id int PRIMARY KEY, item text)`)
  await admin.query(`INSERT INTO ${schema}.orders VALUES (1, 'tea'), (2, 'cake')`)
  await admin.query(`CREATE TABLE ${schema}.secrets (id int, value text)`)
  await admin.query(`CREATE ROLE ${templateRole} NOLOGIN`)
  await admin.query(`GRANT USAGE ON SCHEMA ${schema} TO ${templateRole}`)
  await admin.query(`GRANT SELECT ON ${schema}.orders TO ${templateRole}`)
  return {
    schema,
    templateRole,
    admin,
    async roleExists(name: string) {
      return (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1
    },
    async cleanup() {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`)
      await admin.query(`DROP ROLE IF EXISTS ${templateRole}`)
      await admin.end()
    },
  }
}

/** Polls until `check` holds (or fails after `ms`). */
export async function eventually(check: () => Promise<boolean>, ms = 15_000, step = 100) {
  const end = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, step))
  }
}

/**
 * A private PostgreSQL cluster that checks passwords (SCRAM on 127.0.0.1), unlike the shared test
 * server (trust): what proves a JIT password works, a wrong one does not, and VALID UNTIL holds.
 * initdb refuses root, so it runs as the `postgres` user when we are root.
 */
export async function startScramPostgres(): Promise<{
  adminUrl: string
  loginUrl(username: string, password: string): string
  stop(): Promise<void>
}> {
  const { mkdtempSync, writeFileSync, chownSync, rmSync } = await import('node:fs')
  const { execFileSync } = await import('node:child_process')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { createServer } = await import('node:net')
  const { readdirSync } = await import('node:fs')
  // The newest installed server (Debian's layout), as on this machine and CI.
  const version = readdirSync('/usr/lib/postgresql')
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a))[0]
  const bin = `/usr/lib/postgresql/${version}/bin`
  const dir = mkdtempSync(join(tmpdir(), 'tsr-pg-'))
  const adminPassword = randomBytes(12).toString('hex')
  writeFileSync(join(dir, 'pw'), adminPassword)
  const asPostgres = process.getuid?.() === 0
  const uid = asPostgres ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })) : 0
  if (asPostgres) {
    chownSync(dir, uid, uid)
    chownSync(join(dir, 'pw'), uid, uid)
  }
  const run = (cmd: string, args: string[]) =>
    execFileSync(
      asPostgres ? 'runuser' : cmd,
      asPostgres ? ['-u', 'postgres', '--', cmd, ...args] : args,
      {
        stdio: 'ignore',
      },
    )
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  const data = join(dir, 'data')
  run(`${bin}/initdb`, [
    '-D',
    data,
    '-U',
    'postgres',
    '--pwfile',
    join(dir, 'pw'),
    '--auth-host=scram-sha-256',
    '--auth-local=scram-sha-256',
    '-E',
    'UTF8',
  ])
  run(`${bin}/pg_ctl`, [
    '-D',
    data,
    '-w',
    '-l',
    join(dir, 'log'),
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
    'start',
  ])
  const base = `postgres://127.0.0.1:${port}/postgres`
  const withCreds = (u: string, p: string) => {
    const url = new URL(base)
    url.username = u
    url.password = p
    return url.toString()
  }
  return {
    adminUrl: withCreds('postgres', adminPassword),
    loginUrl: withCreds,
    async stop() {
      try {
        run(`${bin}/pg_ctl`, ['-D', data, '-m', 'immediate', 'stop'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
