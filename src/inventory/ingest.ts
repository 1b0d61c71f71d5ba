import { sql, type Kysely } from 'kysely'
import { TesseraError } from '../errors.js'
import type { Clock } from '../runtime/clock.js'
import type { BulkValue, Database, FactTable, Store, StoreTransaction } from '../store/index.js'
import {
  commonColumns,
  isUsage,
  prepareObservation,
  tableColumns,
  tablesWithLastUsed,
  writeOrder,
  type PreparedFact,
  type PreparedUsage,
} from './facts.js'
import type { IngestOptions, IngestResult } from './inventory-types.js'
import type { Observation } from './observation.js'

/** Facts per transaction: big enough for COPY to pay off, small enough to hold a lock briefly. */
export const ingestChunkSize = 5000

/**
 * Writers take transaction-level advisory locks per table, so two concurrent ingests of the same
 * facts never both see "absent" and insert two open versions, while one ingest writes its tables
 * concurrently on separate connections. Keys are taken in ascending order, so writers never
 * deadlock. Usage writes also update identity rows, so they hold the identity lock as well.
 */
export const inventoryWriteLockKey = 0x7e55e1a1

const lockTables = [
  'identity',
  'usage',
  'credential',
  'credential_location',
  'owner',
  'resource',
  'grant',
  'edge',
] as const
type LockTable = (typeof lockTables)[number]

function lockKey(table: LockTable): number {
  return inventoryWriteLockKey + lockTables.indexOf(table)
}

async function lockTablesFor(db: Kysely<Database>, tables: readonly LockTable[]): Promise<void> {
  const keys = [...new Set(tables.map(lockKey))].sort((a, b) => a - b)
  for (const key of keys) await sql`select pg_advisory_xact_lock(${key}::bigint)`.execute(db)
}

/** Takes every inventory table's write lock (run closing touches them all). */
export async function lockInventory(db: Kysely<Database>): Promise<void> {
  await lockTablesFor(db, lockTables)
}

interface Counts {
  inserted: number
  changed: number
  unchanged: number
}

/**
 * The write path. Ids and content hashes are computed here in JS; per chunk and table there is one
 * read of the current hashes, one set-based close, one set-based "seen again" update and one bulk
 * insert of new versions, all in one transaction under the inventory write lock.
 */
export async function ingestObservations(
  deps: { store: Store; clock: Clock },
  observations: readonly Observation[],
  options: IngestOptions = {},
): Promise<IngestResult> {
  const now = deps.clock.now()
  const runs = options.runs ?? {}
  const facts = new Map<FactTable, Map<string, PreparedFact>>()
  const usage = new Map<string, PreparedUsage>()
  for (let i = 0; i < observations.length; i++) {
    const p = prepareObservation(observations[i]!, i, now)
    // Within one batch the last observation of a fact wins.
    if (isUsage(p)) usage.set(p.key, p)
    else {
      let byId = facts.get(p.table)
      if (!byId) facts.set(p.table, (byId = new Map()))
      byId.set(p.id, p)
    }
  }
  await checkRuns(deps.store.db, runs)
  // An observation repeated within the batch is superseded by its last copy and writes nothing of
  // its own: count it as unchanged, so the counts always add up to `received`.
  let distinct = usage.size
  for (const byId of facts.values()) distinct += byId.size
  const total: Counts = { inserted: 0, changed: 0, unchanged: observations.length - distinct }
  const add = (c: Counts) => {
    total.inserted += c.inserted
    total.changed += c.changed
    total.unchanged += c.unchanged
  }
  // One lane per table, run concurrently (each on its own pooled connection on PostgreSQL; the
  // embedded store serialises them). Usage follows identity in one lane: it updates identity rows,
  // and a fresh identity reads the usage that arrived before it.
  const lane = async (tables: readonly FactTable[], withUsage: boolean): Promise<void> => {
    for (const table of tables) {
      const all = [...(facts.get(table)?.values() ?? [])]
      for (let i = 0; i < all.length; i += ingestChunkSize) {
        const chunk = all.slice(i, i + ingestChunkSize)
        add(
          await deps.store.transaction(async (tx) => {
            await lockTablesFor(tx.db, [table])
            return writeFacts(tx, table, chunk, runs)
          }),
        )
      }
    }
    if (!withUsage) return
    const rows = [...usage.values()]
    for (let i = 0; i < rows.length; i += ingestChunkSize) {
      const chunk = rows.slice(i, i + ingestChunkSize)
      add(
        await deps.store.transaction(async (tx) => {
          await lockTablesFor(tx.db, ['identity', 'usage'])
          return writeUsage(tx.db, chunk)
        }),
      )
    }
  }
  const lanes = writeOrder
    .filter((t) => t !== 'identity' && facts.has(t))
    .map((t) => lane([t], false))
  lanes.unshift(lane(['identity'], true))
  const settled = await Promise.allSettled(lanes)
  const failed = settled.find((r) => r.status === 'rejected')
  if (failed) throw asObservationError(failed.reason)
  return { received: observations.length, ...total }
}

async function checkRuns(
  db: Kysely<Database>,
  runs: Readonly<Record<string, string>>,
): Promise<void> {
  const entries = Object.entries(runs)
  if (entries.length === 0) return
  const ids = entries.map(([, id]) => id)
  if (ids.some((id) => typeof id !== 'string')) {
    throw new TesseraError('TSR_VALIDATION', 'runs must map each source to a run id')
  }
  const found = await db
    .selectFrom('discovery_run')
    .select(['id', 'source', 'status'])
    .where('id', 'in', ids)
    .execute()
  const byId = new Map(found.map((r) => [r.id, r]))
  for (const [source, id] of entries) {
    const run = byId.get(id)
    if (!run) throw new TesseraError('TSR_VALIDATION', `unknown discovery run ${id}`)
    if (run.source !== source) {
      throw new TesseraError(
        'TSR_VALIDATION',
        `run ${id} belongs to source ${run.source}, not ${source}`,
      )
    }
    if (run.status !== 'running') {
      throw new TesseraError('TSR_CONFLICT', `run ${id} is already ${run.status}`)
    }
  }
}

interface CurrentRow {
  id: string
  content_hash: string
  valid_from: Date
  last_seen_at: Date
  run_id: string | null
  last_used_at?: Date | null
}

interface PendingVersion {
  fact: PreparedFact
  validFrom: Date
  lastUsedAt: Date | null
  runId: string | null
}

async function writeFacts(
  tx: StoreTransaction,
  table: FactTable,
  facts: readonly PreparedFact[],
  runs: Readonly<Record<string, string>>,
): Promise<Counts> {
  const withLastUsed = tablesWithLastUsed.has(table)
  const t = sql.table(table)
  const current = await sql<CurrentRow>`
    select id, content_hash, valid_from, last_seen_at, run_id ${withLastUsed ? sql`, last_used_at` : sql``}
    from ${t} where id = any(${facts.map((f) => f.id)}::uuid[]) and valid_to is null
  `.execute(tx.db)
  const byId = new Map(current.rows.map((r) => [r.id, r]))

  const counts: Counts = { inserted: 0, changed: 0, unchanged: 0 }
  const seen = {
    ids: [] as string[],
    at: [] as string[],
    runs: [] as (string | null)[],
    used: [] as (string | null)[],
  }
  const close = { ids: [] as string[], at: [] as string[] }
  const pending: PendingVersion[] = []
  for (const fact of facts) {
    const runId = runs[fact.source] ?? null
    const old = byId.get(fact.id)
    if (old && old.content_hash === fact.hash) {
      counts.unchanged++
      if (!movesSeen(old, fact, runId)) continue
      seen.ids.push(fact.id)
      seen.at.push(fact.observedAt.toISOString())
      seen.runs.push(runId)
      seen.used.push(fact.lastUsedAt?.toISOString() ?? null)
      continue
    }
    let validFrom = fact.observedAt
    let lastUsedAt = fact.lastUsedAt
    if (old) {
      counts.changed++
      // An observation older than the open version still supersedes it, but never before it began.
      const oldFrom = new Date(old.valid_from)
      if (validFrom < oldFrom) validFrom = oldFrom
      close.ids.push(fact.id)
      close.at.push(validFrom.toISOString())
      lastUsedAt = later(lastUsedAt, old.last_used_at ?? null)
    } else counts.inserted++
    pending.push({ fact, validFrom, lastUsedAt, runId })
  }

  if (table === 'identity' && counts.inserted > 0) {
    // Usage may have arrived before the identity did.
    const fresh = pending.filter((p) => !byId.has(p.fact.id)).map((p) => p.fact.id)
    const used = await sql<{ id: string; hour: Date }>`
      select identity_id as id, max(hour) as hour from usage
      where identity_id = any(${fresh}::uuid[]) group by identity_id
    `.execute(tx.db)
    if (used.rows.length > 0) {
      const hours = new Map(used.rows.map((r) => [r.id, r.hour]))
      for (const p of pending) p.lastUsedAt = later(p.lastUsedAt, hours.get(p.fact.id) ?? null)
    }
  }

  if (seen.ids.length > 0) {
    await sql`
      update ${t} as t set
        last_seen_at = greatest(t.last_seen_at, v.seen),
        run_id = coalesce(v.run_id, t.run_id)
        ${withLastUsed ? sql`, last_used_at = greatest(t.last_used_at, v.used)` : sql``}
      from unnest(${seen.ids}::uuid[], ${seen.at}::timestamptz[], ${seen.runs}::text[],
        ${seen.used}::timestamptz[]) as v(id, seen, run_id, used)
      where t.id = v.id and t.valid_to is null
    `.execute(tx.db)
  }
  if (close.ids.length > 0) {
    await sql`
      update ${t} as t set valid_to = v.valid_to
      from unnest(${close.ids}::uuid[], ${close.at}::timestamptz[]) as v(id, valid_to)
      where t.id = v.id and t.valid_to is null
    `.execute(tx.db)
  }
  if (pending.length > 0) {
    const specific = tableColumns[table]
    const rows = pending.map(({ fact, validFrom, lastUsedAt, runId }) => {
      const from = validFrom.toISOString()
      const row: BulkValue[] = [
        fact.id,
        fact.ref,
        fact.source,
        from,
        from,
        runId,
        fact.hash,
        fact.attributes,
      ]
      for (const col of specific) {
        row.push(col === 'last_used_at' ? (lastUsedAt?.toISOString() ?? null) : fact.values[col])
      }
      return row
    })
    await tx.bulkInsert(table, [...commonColumns, ...specific], rows)
  }
  return counts
}

/** Whether seeing an unchanged fact again moves anything; re-reading the same batch moves nothing. */
function movesSeen(old: CurrentRow, fact: PreparedFact, runId: string | null): boolean {
  if (fact.observedAt > new Date(old.last_seen_at)) return true
  if (runId !== null && runId !== old.run_id) return true
  if (fact.lastUsedAt === null) return false
  return old.last_used_at == null || fact.lastUsedAt > new Date(old.last_used_at)
}

function later(a: Date | null, b: Date | string | null): Date | null {
  if (b === null) return a
  const bd = new Date(b)
  return a === null || bd > a ? bd : a
}

async function writeUsage(db: Kysely<Database>, rows: readonly PreparedUsage[]): Promise<Counts> {
  const written = await sql<{ inserted: boolean }>`
    insert into usage (identity_id, identity_ref, resource_ref, action, hour, count, source)
    select * from unnest(
      ${rows.map((r) => r.identityId)}::uuid[],
      ${rows.map((r) => r.identityRef)}::text[],
      ${rows.map((r) => r.resource)}::text[],
      ${rows.map((r) => r.action)}::text[],
      ${rows.map((r) => r.hour.toISOString())}::timestamptz[],
      ${rows.map((r) => r.count)}::int[],
      ${rows.map((r) => r.source)}::text[])
    on conflict (identity_id, resource_ref, action, hour, source)
      do update set count = excluded.count, recorded_at = now()
      where usage.count <> excluded.count
    returning (xmax::text = '0') as inserted
  `.execute(db)
  const inserted = written.rows.filter((r) => r.inserted).length
  const changed = written.rows.length - inserted
  // last_used_at is a running maximum kept on the open version, never a new version.
  await sql`
    update identity as t set last_used_at = v.hour
    from (
      select id, max(hour) as hour
      from unnest(${rows.map((r) => r.identityId)}::uuid[],
        ${rows.map((r) => r.hour.toISOString())}::timestamptz[]) as u(id, hour)
      group by id
    ) as v
    where t.id = v.id and t.valid_to is null and (t.last_used_at is null or t.last_used_at < v.hour)
  `.execute(db)
  return { inserted, changed, unchanged: rows.length - written.rows.length }
}

/**
 * Values that got past the checks but that PostgreSQL still refuses (a NUL byte in a string, say)
 * are the caller's mistake: report them as an invalid observation, not as a store failure.
 */
export function asObservationError(err: unknown): unknown {
  if (err instanceof TesseraError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && (code.startsWith('22') || code === '23514' || code === '23502')) {
    return new TesseraError(
      'TSR_OBSERVATION_INVALID',
      `the store refused an observation value: ${(err as Error).message}`,
      { cause: err, details: { sqlState: code } },
    )
  }
  return err
}
