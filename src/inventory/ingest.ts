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

async function lockTablesFor(
  db: Kysely<Database>,
  tables: readonly LockTable[],
  asyncCommit = false,
): Promise<void> {
  const keys = [...new Set(tables.map(lockKey))].sort((a, b) => a - b)
  // One round trip: the settings and the locks in one statement (select-list order is evaluation
  // order, so the keys are still taken ascending). See ingestObservations for the async commit.
  const parts = keys.map((key) => sql`pg_advisory_xact_lock(${key}::bigint)`)
  if (asyncCommit) parts.unshift(sql`set_config('synchronous_commit', 'off', true)`)
  await sql`select ${sql.join(parts)}`.execute(db)
}

/** Takes every inventory table's write lock (run closing touches them all). */
export async function lockInventory(db: Kysely<Database>): Promise<void> {
  await lockTablesFor(db, lockTables)
}

/**
 * Where ingest time goes, for the benchmark: milliseconds per phase, summed over calls. Lanes run
 * concurrently, so per-table times overlap and add up to more than the wall time.
 */
export type IngestProfile = Map<string, number>

async function timed<T>(
  profile: IngestProfile | undefined,
  phase: string,
  fn: () => Promise<T>,
): Promise<T> {
  if (!profile) return fn()
  const t0 = performance.now()
  try {
    return await fn()
  } finally {
    profile.set(phase, (profile.get(phase) ?? 0) + performance.now() - t0)
  }
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
  deps: { store: Store; clock: Clock; profile?: IngestProfile },
  observations: readonly Observation[],
  options: IngestOptions = {},
): Promise<IngestResult> {
  const profile = deps.profile
  const tPrepare = performance.now()
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
  const batch = batchContext(facts, usage)
  profile?.set('prepare (js)', (profile.get('prepare (js)') ?? 0) + performance.now() - tPrepare)
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
  //
  // Chunk transactions commit asynchronously (synchronous_commit off, for that transaction only):
  // a commit does not wait for its WAL flush. Before `ingest` returns, one synchronous commit
  // flushes the WAL up to its own record, which covers every earlier commit, so an acknowledged
  // call survives a crash. A crash during a call can lose some of its committed chunks (never
  // corrupt anything): the call was not acknowledged, and repeating it is idempotent.
  let wrote = false
  const lane = async (tables: readonly FactTable[], withUsage: boolean): Promise<void> => {
    for (const table of tables) {
      const all = [...(facts.get(table)?.values() ?? [])]
      for (let i = 0; i < all.length; i += ingestChunkSize) {
        const chunk = all.slice(i, i + ingestChunkSize)
        wrote = true
        const affected: string[] = []
        add(
          await timed(profile, `${table}: transaction`, () =>
            deps.store.transaction(async (tx) => {
              await timed(profile, `${table}: lock`, () => lockTablesFor(tx.db, [table], true))
              return writeFacts(tx, table, chunk, runs, batch, affected, profile)
            }),
          ),
        )
        if (affected.length > 0) {
          // Credentials of identities outside this call changed: their next expiry moves. Under
          // the identity lock, after the credentials committed, so a concurrent identity writer
          // either sees these credentials or is seen here.
          await timed(profile, 'credential: identity next expiry', () =>
            deps.store.transaction(async (tx) => {
              await lockTablesFor(tx.db, ['identity'], true)
              await refreshNextExpiry(tx.db, affected)
            }),
          )
        }
      }
    }
    if (!withUsage) return
    const rows = [...usage.values()]
    for (let i = 0; i < rows.length; i += ingestChunkSize) {
      const chunk = rows.slice(i, i + ingestChunkSize)
      wrote = true
      add(
        await timed(profile, 'usage: transaction', () =>
          deps.store.transaction(async (tx) => {
            await timed(profile, 'usage: lock', () =>
              lockTablesFor(tx.db, ['identity', 'usage'], true),
            )
            return writeUsage(tx.db, chunk, profile)
          }),
        ),
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
  // The durable point: a synchronous commit of a transaction with an xid waits for the WAL flush up
  // to its commit record, after every chunk committed above.
  if (wrote) await timed(profile, 'flush', () => sql`select txid_current()`.execute(deps.store.db))
  return { received: observations.length, ...total }
}

/** What one call's facts tell each table's writer about the others. */
interface BatchContext {
  /** Latest usage hour per identity id among this call's usage observations. */
  usageHour: Map<string, Date>
  /** This call's credentials per identity id: their ids and the earliest expiry. */
  credentials: Map<string, { ids: string[]; next: Date | null }>
  /** Ids of every credential in this call. */
  credentialIds: string[]
  /** Ids of every identity in this call; their writer keeps their next expiry. */
  identityIds: ReadonlySet<string>
}

function batchContext(
  facts: ReadonlyMap<FactTable, ReadonlyMap<string, PreparedFact>>,
  usage: ReadonlyMap<string, PreparedUsage>,
): BatchContext {
  const usageHour = new Map<string, Date>()
  for (const u of usage.values()) {
    const h = usageHour.get(u.identityId)
    if (h === undefined || u.hour > h) usageHour.set(u.identityId, u.hour)
  }
  const credentials = new Map<string, { ids: string[]; next: Date | null }>()
  const credentialFacts = facts.get('credential')
  for (const c of credentialFacts?.values() ?? []) {
    const identityId = c.values.identity_id as string | null
    if (identityId === null) continue
    let entry = credentials.get(identityId)
    if (!entry) credentials.set(identityId, (entry = { ids: [], next: null }))
    entry.ids.push(c.id)
    const expires = c.values.expires_at as string | null
    if (expires !== null) entry.next = earlier(entry.next, new Date(expires))
  }
  return {
    usageHour,
    credentials,
    credentialIds: [...(credentialFacts?.keys() ?? [])],
    identityIds: new Set(facts.get('identity')?.keys() ?? []),
  }
}

/** The earliest expiry of credentials `c`. */
const nextExpiry = sql`min(c.expires_at)`

/**
 * "Credential `c` is current", written so that it does not match the partial index
 * credential_current_expires (expires_at, identity_id): given `c.valid_to is null`, the planner
 * answers an identity's next expiry by scanning that whole index with identity_id as a non-leading
 * key (seconds per chunk at 100,000 identities). This way it looks the identity's few credentials up
 * by credential_identity (identity_id, valid_from).
 */
const currentCredential = sql`(c.valid_to is null) is true`

/** Sets each listed current identity's next expiry from its current credentials. */
export async function refreshNextExpiry(
  db: Kysely<Database>,
  identityIds: readonly string[],
): Promise<void> {
  if (identityIds.length === 0) return
  await sql`
    update identity as i set next_expires_at = m.next
    from (
      select v.id, (select ${nextExpiry} from credential c
                    where c.identity_id = v.id and ${currentCredential}) as next
      from unnest(${[...new Set(identityIds)]}::uuid[]) as v(id)
    ) as m
    where i.id = m.id and i.valid_to is null and i.next_expires_at is distinct from m.next
  `.execute(db)
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
  /** identity: the open version's, and the one its current credentials give (outside this call) */
  next_expires_at?: Date | null
  stored_next?: Date | null
  /** identity: the latest usage hour already stored */
  usage_hour?: Date | null
  /** credential: the identity the open version belongs to */
  identity_id?: string | null
  /** identity: the id the row was asked for (the open version's id is null when there is none) */
  key?: string
}

interface PendingVersion {
  fact: PreparedFact
  validFrom: Date
  lastUsedAt: Date | null
  runId: string | null
  /** identity only */
  nextExpiresAt: Date | null
}

async function writeFacts(
  tx: StoreTransaction,
  table: FactTable,
  facts: readonly PreparedFact[],
  runs: Readonly<Record<string, string>>,
  batch: BatchContext,
  affectedIdentities: string[],
  profile?: IngestProfile,
): Promise<Counts> {
  const withLastUsed = tablesWithLastUsed.has(table)
  const t = sql.table(table)
  const ids = facts.map((f) => f.id)
  const current = await timed(profile, `${table}: read current`, () =>
    table === 'identity'
      ? // One round trip for the open versions and, per identity, what the other tables say:
        // usage stored before a fresh identity arrived, and the next expiry of its current
        // credentials other than this call's (which the credential lane may be writing now).
        sql<CurrentRow>`
          select t.id, t.content_hash, t.valid_from, t.last_seen_at, t.run_id, t.last_used_at,
            t.next_expires_at,
            case when t.id is null then
              (select max(u.hour) from usage u where u.identity_id = v.id) end as usage_hour,
            (select ${nextExpiry} from credential c
              where c.identity_id = v.id and ${currentCredential}
                and not (c.id = any(${batch.credentialIds}::uuid[]))) as stored_next,
            v.id as key
          from unnest(${ids}::uuid[]) as v(id)
          left join identity t on t.id = v.id and t.valid_to is null
        `.execute(tx.db)
      : sql<CurrentRow>`
          select id, content_hash, valid_from, last_seen_at, run_id
            ${withLastUsed ? sql`, last_used_at` : sql``}
            ${table === 'credential' ? sql`, identity_id` : sql``}
          from ${t} where id = any(${ids}::uuid[]) and valid_to is null
        `.execute(tx.db),
  )
  const byId = new Map<string, CurrentRow>()
  const extra = new Map<string, CurrentRow>()
  for (const r of current.rows) {
    if (table === 'identity') extra.set(r.key!, r)
    if (r.id !== null) byId.set(r.id, r)
  }

  const counts: Counts = { inserted: 0, changed: 0, unchanged: 0 }
  const seen = {
    ids: [] as string[],
    at: [] as string[],
    runs: [] as (string | null)[],
    used: [] as (string | null)[],
  }
  const close = { ids: [] as string[], at: [] as string[] }
  const expiry = { ids: [] as string[], next: [] as (string | null)[] }
  const pending: PendingVersion[] = []
  for (const fact of facts) {
    const runId = runs[fact.source] ?? null
    const old = byId.get(fact.id)
    let next: Date | null = null
    if (table === 'identity') {
      next = earlier(
        dateOrNull(extra.get(fact.id)?.stored_next),
        batch.credentials.get(fact.id)?.next ?? null,
      )
    } else if (table === 'credential') {
      // The next expiry of the identities on both sides of a new or changed credential moves;
      // identities in this call are kept by their own writer.
      const identityId = fact.values.identity_id as string | null
      if (!(old && old.content_hash === fact.hash)) {
        for (const id of [identityId, old?.identity_id ?? null]) {
          if (id !== null && !batch.identityIds.has(id)) affectedIdentities.push(id)
        }
      }
    }
    if (old && old.content_hash === fact.hash) {
      counts.unchanged++
      if (table === 'identity' && !sameInstant(next, dateOrNull(old.next_expires_at))) {
        expiry.ids.push(fact.id)
        expiry.next.push(next?.toISOString() ?? null)
      }
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
    } else {
      counts.inserted++
      if (table === 'identity') {
        // Usage may have arrived before the identity did, or in this very call: fold it in now
        // rather than update the fresh row afterwards.
        lastUsedAt = later(lastUsedAt, extra.get(fact.id)?.usage_hour ?? null)
        lastUsedAt = later(lastUsedAt, batch.usageHour.get(fact.id) ?? null)
      }
    }
    pending.push({ fact, validFrom, lastUsedAt, runId, nextExpiresAt: next })
  }

  if (expiry.ids.length > 0) {
    await sql`
      update identity as t set next_expires_at = v.next
      from unnest(${expiry.ids}::uuid[], ${expiry.next}::timestamptz[]) as v(id, next)
      where t.id = v.id and t.valid_to is null
    `.execute(tx.db)
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
    const rows = pending.map(({ fact, validFrom, lastUsedAt, runId, nextExpiresAt }) => {
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
      if (table === 'identity') row.push(nextExpiresAt?.toISOString() ?? null)
      return row
    })
    const columns = [...commonColumns, ...specific]
    if (table === 'identity') columns.push('next_expires_at')
    await timed(profile, `${table}: copy`, () => tx.bulkInsert(table, columns, rows))
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

function earlier(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b
  return b === null || a <= b ? a : b
}

function dateOrNull(v: Date | string | null | undefined): Date | null {
  return v === null || v === undefined ? null : new Date(v)
}

function sameInstant(a: Date | null, b: Date | null): boolean {
  return a === null || b === null ? a === b : a.getTime() === b.getTime()
}

function later(a: Date | null, b: Date | string | null): Date | null {
  if (b === null) return a
  const bd = new Date(b)
  return a === null || bd > a ? bd : a
}

async function writeUsage(
  db: Kysely<Database>,
  rows: readonly PreparedUsage[],
  profile?: IngestProfile,
): Promise<Counts> {
  const tUpsert = performance.now()
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
  profile?.set('usage: upsert', (profile.get('usage: upsert') ?? 0) + performance.now() - tUpsert)
  const tTouch = performance.now()
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
  profile?.set(
    'usage: identity last_used_at',
    (profile.get('usage: identity last_used_at') ?? 0) + performance.now() - tTouch,
  )
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
