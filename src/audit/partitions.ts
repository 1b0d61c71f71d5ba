import { sql, type Kysely } from 'kysely'
import type { Database } from '../store/schema.js'

const dayMs = 86_400_000

/** `event_p20261123`: the partition of one UTC day. */
export function partitionName(day: Date): string {
  return 'event_p' + day.toISOString().slice(0, 10).replaceAll('-', '')
}

export interface PartitionOutcome {
  created: string[]
  /** Days left to the default partition (it already holds rows of that day). */
  skipped: string[]
}

/**
 * Creates the daily partitions of `event` for the UTC days from `from` through `days - 1` days
 * after it, where missing. Safe to run from several replicas at once (a transaction-level advisory
 * lock serialises them). A day whose rows already sit in `event_default` is left there: PostgreSQL
 * refuses a partition that would move rows out of the default one.
 */
export async function ensureDailyPartitions(
  db: Kysely<Database>,
  from: Date,
  days: number,
): Promise<PartitionOutcome> {
  const outcome: PartitionOutcome = { created: [], skipped: [] }
  const start = Math.floor(from.getTime() / dayMs) * dayMs
  const existing = new Set(
    (
      await sql<{ name: string }>`select c.relname as name from pg_inherits i
        join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
        where p.relname = 'event' and p.relnamespace = c.relnamespace
          and p.relnamespace = (select oid from pg_namespace where nspname = current_schema())`.execute(
        db,
      )
    ).rows.map((r) => r.name),
  )
  for (let i = 0; i < days; i++) {
    const day = new Date(start + i * dayMs)
    const name = partitionName(day)
    if (existing.has(name)) continue
    const next = new Date(day.getTime() + dayMs)
    try {
      await db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(hashtext('tessera.event.partitions'))`.execute(trx)
        await sql
          .raw(
            `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF event FOR VALUES FROM ('${day.toISOString()}') TO ('${next.toISOString()}')`,
          )
          .execute(trx)
      })
      outcome.created.push(name)
    } catch (err) {
      // 23514: rows of that day are in the default partition already.
      if ((err as { code?: string }).code === '23514') outcome.skipped.push(name)
      else throw err
    }
  }
  return outcome
}
