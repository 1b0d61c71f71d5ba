import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely'
import { TesseraError } from '../errors.js'
import * as initial from './migrations/0001-initial.js'
import * as federation from './migrations/0006-federation.js'
import * as dynamic from './migrations/0013-dynamic.js'

/** Every migration, in order. Names never change once released. */
const migrations: Record<string, Migration> = {
  '0001-initial': { up: (db) => initial.migrate(db) },
  '0006-federation': { up: (db) => federation.migrate(db) },
  '0013-dynamic': { up: (db) => dynamic.migrate(db) },
}

/** Each migration's SQL, for the signature: a changed statement must invalidate cached templates. */
const migrationSql: Record<string, string> = {
  '0001-initial': initial.up,
  '0006-federation': federation.up,
  '0013-dynamic': dynamic.up,
}

const provider: MigrationProvider = { getMigrations: async () => migrations }

/** A fixed key: every Tessera process migrating this database waits on the same lock. */
const migrationLockKey = 0x7e55e7a

/**
 * Brings the schema up to date. Safe to run twice and from several processes at once: a session-level
 * advisory lock serialises them, and the Kysely migrator skips what is already applied.
 */
export async function runMigrations(
  db: Kysely<unknown>,
  backend: 'pglite' | 'postgres',
): Promise<void> {
  // Pin the migration bookkeeping to our own schema: Kysely otherwise finds another schema's tables.
  const current = await sql<{ schema: string }>`select current_schema() as schema`.execute(db)
  const migrationTableSchema = current.rows[0]?.schema ?? 'public'
  const run = async (conn: Kysely<unknown>) => {
    const migrator = new Migrator({ db: conn, provider, migrationTableSchema })
    const { error, results } = await migrator.migrateToLatest()
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName
      throw new TesseraError(
        'TSR_STORE_MIGRATION',
        `migration ${failed ?? '(setup)'} failed: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      )
    }
  }
  if (backend === 'pglite') return run(db)
  await db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${migrationLockKey})`.execute(conn)
    try {
      await run(db)
    } finally {
      await sql`select pg_advisory_unlock(${migrationLockKey})`.execute(conn)
    }
  })
}

export const migrationNames = Object.keys(migrations)

/** Identifies the migrations' content: names and SQL. Changes whenever the schema does. */
export function migrationSignature(): string {
  return JSON.stringify(migrationNames.map((name) => [name, migrationSql[name]]))
}
