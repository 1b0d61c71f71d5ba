import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely'
import { TesseraError } from '../errors.js'
import * as initial from './migrations/0001-initial.js'
import * as federation from './migrations/0006-federation.js'
import * as observe from './migrations/0009-observe.js'
import * as posture from './migrations/0011-posture.js'
import * as audit from './migrations/0007-audit.js'
import * as govern from './migrations/0010-govern.js'
import * as inventoryPerf from './migrations/0014-inventory-perf.js'
import * as rotation from './migrations/0012-rotation.js'
import * as dynamic from './migrations/0013-dynamic.js'

/** Every migration, in order. Names never change once released. */
const migrations: Record<string, Migration> = {
  '0001-initial': { up: (db) => initial.migrate(db) },
  '0006-federation': { up: (db) => federation.migrate(db) },
  '0009-observe': { up: (db) => observe.migrate(db) },
  '0011-posture': { up: (db) => posture.migrate(db) },
  '0007-audit': { up: (db) => audit.migrate(db) },
  '0010-govern': { up: (db) => govern.migrate(db) },
  '0014-inventory-perf': { up: (db) => inventoryPerf.migrate(db) },
  '0012-rotation': { up: (db) => rotation.migrate(db) },
  '0013-dynamic': { up: (db) => dynamic.migrate(db) },
}

/** Each migration's SQL, for the signature: a changed statement must invalidate cached templates. */
const migrationSql: Record<string, string> = {
  '0001-initial': initial.up,
  '0006-federation': federation.up,
  '0009-observe': observe.up,
  '0011-posture': posture.up,
  '0007-audit': audit.up,
  '0010-govern': govern.up,
  '0014-inventory-perf': inventoryPerf.up,
  '0012-rotation': rotation.up,
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
