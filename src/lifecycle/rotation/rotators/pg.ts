import pg from 'pg'
import { TesseraError } from '../../../errors.js'
import { configChecker } from '../config-check.js'
import type { CredentialVersion, Rotator, RotatorDeps, RotatorModule } from '../rotator.js'
import { scramMatches, scramVerifier } from './scram.js'

/**
 * PostgreSQL role password, dual-role. The privileges sit on a NOLOGIN group role (`role`); two
 * login roles that are members of it (`<role>_a`, `<role>_b` by default) take turns. A rotation sets
 * a fresh password on the login role not in use, so the one consumers hold is untouched and every
 * connection made with it, old or new, keeps working through the grace period. At activation the
 * old login role gets `VALID UNTIL <end of grace>` (PostgreSQL itself then refuses its password
 * after the grace, even if Tessera is down); revocation makes it NOLOGIN with no password and ends
 * its sessions.
 *
 * The managed value is JSON `{"username": …, "password": …}`. Passwords are sent as SCRAM
 * verifiers, so they never appear in the server's statement log.
 */
export interface PgRotatorConfig {
  /** A connection URL of a role allowed to ALTER ROLE (CREATEROLE or superuser). Secret. */
  adminUrl: string
  /** The NOLOGIN group role holding the grants. */
  role: string
  /** The two login roles; default `<role>_a`, `<role>_b`. */
  logins: [string, string]
  /** End the old login role's sessions at revocation (default true). */
  terminateSessions: boolean
}

const identifier = /^[a-z_][a-z0-9_]{0,62}$/
const quote = (name: string) => `"${name}"`

export const pgRotatorModule: RotatorModule<PgRotatorConfig> = {
  kind: 'pg',
  secretFields: ['adminUrl'],
  parseConfig(config) {
    const c = configChecker('pg', config, ['adminUrl', 'role', 'logins', 'terminateSessions'])
    const adminUrl = c.url('adminUrl', ['postgres:', 'postgresql:'])
    const role = c.string('role', { pattern: identifier })
    const raw = (config as { logins?: unknown } | null)?.logins
    let logins: [string, string] | undefined
    if (raw === undefined) {
      if (role) logins = [`${role}_a`, `${role}_b`]
    } else if (
      Array.isArray(raw) &&
      raw.length === 2 &&
      raw.every((l) => typeof l === 'string' && identifier.test(l)) &&
      raw[0] !== raw[1]
    ) {
      logins = [raw[0] as string, raw[1] as string]
    } else {
      c.problem('logins must be two different role names')
    }
    const terminateSessions = c.boolean('terminateSessions') ?? true
    c.done()
    return { adminUrl: adminUrl!.toString(), role: role!, logins: logins!, terminateSessions }
  },
  create: createPgRotator,
}

export function parsePgValue(value: string): { username: string; password: string } {
  const v = JSON.parse(value) as { username?: unknown; password?: unknown }
  if (typeof v.username !== 'string' || typeof v.password !== 'string') {
    throw new TesseraError('TSR_VALIDATION', 'rotator(pg): the value is {"username","password"}')
  }
  return { username: v.username, password: v.password }
}

export function createPgRotator(config: PgRotatorConfig, deps: RotatorDeps): Rotator {
  let pool: pg.Pool | undefined
  const admin = () =>
    (pool ??= new pg.Pool({ connectionString: config.adminUrl, max: 2, idleTimeoutMillis: 5000 }))
  const userOf = (v: CredentialVersion | undefined): string | undefined => {
    if (v === undefined) return undefined
    const meta = v.meta.username
    return typeof meta === 'string' ? meta : parsePgValue(v.value).username
  }
  const fail = (step: string, err: unknown) =>
    err instanceof TesseraError
      ? err
      : new TesseraError('TSR_ROTATION_FAILED', `rotator(pg): ${step}: ${(err as Error).message}`, {
          cause: err,
        })

  return {
    kind: 'pg',
    async create(ctx) {
      const current = userOf(ctx.current)
      const login = config.logins.find((l) => l !== current)!
      const password = deps.random(24).toString('base64url')
      try {
        const db = admin()
        const group = await db.query('select 1 from pg_roles where rolname = $1', [config.role])
        if (group.rowCount === 0) {
          throw new TesseraError(
            'TSR_ROTATION_FAILED',
            `rotator(pg): the group role ${config.role} does not exist (create it NOLOGIN with the grants consumers need)`,
          )
        }
        const exists = await db.query('select 1 from pg_roles where rolname = $1', [login])
        if (exists.rowCount === 0) {
          // Two creators racing: the loser's CREATE fails with duplicate_object, which is fine.
          await db.query(`create role ${quote(login)} login`).catch((err: { code?: string }) => {
            if (err.code !== '42710') throw err
          })
        }
        await db.query(`grant ${quote(config.role)} to ${quote(login)}`)
        const verifier = scramVerifier(password, deps.random(16))
        await db.query(
          `alter role ${quote(login)} with login password ${pg.escapeLiteral(verifier)} valid until 'infinity'`,
        )
      } catch (err) {
        throw fail('create', err)
      }
      return { value: JSON.stringify({ username: login, password }), meta: { username: login } }
    },
    async verify(_ctx, next) {
      const { username, password } = parsePgValue(next.value)
      try {
        const row = await admin().query<{ rolpassword: string | null; rolcanlogin: boolean }>(
          'select rolpassword, rolcanlogin from pg_authid where rolname = $1',
          [username],
        )
        const r = row.rows[0]
        if (!r?.rolcanlogin || !scramMatches(r.rolpassword, password)) {
          throw new TesseraError(
            'TSR_ROTATION_FAILED',
            `rotator(pg): verify: ${username} does not hold the new password`,
          )
        }
        const url = new URL(config.adminUrl)
        url.username = encodeURIComponent(username)
        url.password = encodeURIComponent(password)
        const client = new pg.Client({ connectionString: url.toString() })
        await client.connect()
        try {
          const who = await client.query<{ u: string; member: boolean }>(
            `select current_user as u, pg_has_role(current_user, $1, 'member') as member`,
            [config.role],
          )
          if (who.rows[0]?.u !== username || who.rows[0]?.member !== true) {
            throw new TesseraError(
              'TSR_ROTATION_FAILED',
              `rotator(pg): verify: ${username} is not a member of ${config.role}`,
            )
          }
        } finally {
          await client.end()
        }
      } catch (err) {
        throw fail('verify', err)
      }
    },
    async activate(ctx, next, graceUntil) {
      const old = userOf(ctx.current)
      if (old === undefined || old === userOf(next)) return
      try {
        await admin().query(
          `alter role ${quote(old)} valid until ${pg.escapeLiteral(graceUntil.toISOString())}`,
        )
      } catch (err) {
        throw fail('activate', err)
      }
    },
    async revoke(_ctx, keep, drop) {
      const login = userOf(drop)!
      if (login === userOf(keep)) return
      try {
        const db = admin()
        await db.query(`alter role ${quote(login)} with nologin password null`)
        if (config.terminateSessions) {
          await db.query(
            'select pg_terminate_backend(pid) from pg_stat_activity where usename = $1 and pid <> pg_backend_pid()',
            [login],
          )
        }
      } catch (err) {
        throw fail('revoke', err)
      }
    },
    async close() {
      await pool?.end()
      pool = undefined
    },
  }
}
