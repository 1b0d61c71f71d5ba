import pg from 'pg'
import { TesseraError } from '../../errors.js'
import { scramSha256Verifier } from './credential-material.js'
import type { DynamicBackendConfig } from './dynamic-config.js'
import type { DynamicBackend } from './dynamic-backend.js'

/** Marks a role as Tessera's: orphan sweeps only ever drop roles whose comment starts with it. */
export const roleCommentPrefix = 'tessera dynamic lease '

const undefinedObject = '42704'

/**
 * PostgreSQL dynamic credentials: a LOGIN role with a SCRAM verifier (never the clear password in
 * SQL), `VALID UNTIL` the lease's expiry (so PostgreSQL itself refuses new logins after it, even if
 * Tessera is down), a member of the template role, commented with the lease and SPIFFE ID, with
 * `application_name` defaulting to the SPIFFE ID. All in one transaction: the role exists complete
 * or not at all.
 */
export function createPostgresBackend(
  config: Pick<DynamicBackendConfig, 'name' | 'url' | 'templates'>,
  options: { poolSize?: number; scramIterations?: number } = {},
): DynamicBackend {
  const pool = new pg.Pool({ connectionString: config.url, max: options.poolSize ?? 4 })
  // An idle client's error (the server restarted) must not crash the process; the next query reconnects.
  pool.on('error', () => {})
  const url = new URL(config.url)
  const q = (name: string) => pg.escapeIdentifier(name)
  const lit = (value: string) => pg.escapeLiteral(value)
  const backendError = (what: string, err: unknown) =>
    new TesseraError(
      'TSR_DYNAMIC_BACKEND',
      `postgres(${config.name}): ${what}: ${(err as Error).message}`,
      { cause: err },
    )

  return {
    type: 'postgres',
    name: config.name,
    templates: Object.keys(config.templates),
    connection: {
      host: url.hostname,
      port: Number(url.port || 5432),
      database: decodeURIComponent(url.pathname.slice(1)) || 'postgres',
    },

    async create(r) {
      const template = config.templates[r.template]
      if (!template) throw new TesseraError('TSR_NOT_FOUND', `no template ${r.template}`)
      const verifier = scramSha256Verifier(
        r.password,
        options.scramIterations ? { iterations: options.scramIterations } : {},
      )
      const role = q(r.username)
      const client = await pool.connect().catch((err: unknown) => {
        throw backendError('cannot connect', err)
      })
      try {
        await client.query('BEGIN')
        await client.query(
          `CREATE ROLE ${role} LOGIN INHERIT PASSWORD ${lit(verifier)} VALID UNTIL ${lit(r.expiresAt.toISOString())}`,
        )
        if (template.role) await client.query(`GRANT ${q(template.role)} TO ${role}`)
        for (const statement of template.statements ?? []) {
          await client.query(statement.replaceAll('{{role}}', role))
        }
        await client.query(
          `COMMENT ON ROLE ${role} IS ${lit(`${roleCommentPrefix}${r.leaseId} for ${r.spiffeId}`)}`,
        )
        // A default the client may override, but libpq-style clients keep it unless told otherwise.
        await client.query(
          `ALTER ROLE ${role} SET application_name = ${lit(r.spiffeId.slice(0, 63))}`,
        )
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw backendError(`creating role ${r.username} failed`, err)
      } finally {
        client.release()
      }
    },

    async revoke(username) {
      const client = await pool.connect().catch((err: unknown) => {
        throw backendError('cannot connect', err)
      })
      try {
        const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])
        if (exists.rowCount === 0) return { sessionsTerminated: 0 }
        const role = q(username)
        // No new logins first, then end the live sessions, then drop what is left.
        await client.query(`ALTER ROLE ${role} NOLOGIN`)
        const ended = await client.query<{ n: string }>(
          `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n
             FROM pg_stat_activity WHERE usename = $1`,
          [username],
        )
        await client.query('BEGIN')
        await client.query(`REASSIGN OWNED BY ${role} TO CURRENT_USER`)
        await client.query(`DROP OWNED BY ${role}`)
        await client.query(`DROP ROLE ${role}`)
        await client.query('COMMIT')
        return { sessionsTerminated: Number(ended.rows[0]?.n ?? 0) }
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        // Another replica's reaper dropped it meanwhile: revoked all the same.
        if ((err as { code?: string }).code === undefinedObject) return { sessionsTerminated: 0 }
        throw backendError(`dropping role ${username} failed`, err)
      } finally {
        client.release()
      }
    },

    async listManaged(prefix) {
      const rows = await pool
        .query<{ rolname: string }>(
          `SELECT rolname FROM pg_roles
            WHERE starts_with(rolname, $1)
              AND starts_with(coalesce(shobj_description(oid, 'pg_authid'), ''), $2)`,
          [prefix, roleCommentPrefix],
        )
        .catch((err: unknown) => {
          throw backendError('listing roles failed', err)
        })
      return rows.rows.map((r) => r.rolname)
    },

    async sessions(usernames) {
      const out = new Map<string, number>()
      if (usernames.length === 0) return out
      const rows = await pool
        .query<{ usename: string; n: string }>(
          `SELECT usename, count(*) AS n FROM pg_stat_activity
            WHERE usename = ANY($1) GROUP BY usename`,
          [usernames],
        )
        .catch((err: unknown) => {
          throw backendError('reading pg_stat_activity failed', err)
        })
      for (const r of rows.rows) out.set(r.usename, Number(r.n))
      return out
    },

    close: () => pool.end(),
  }
}
