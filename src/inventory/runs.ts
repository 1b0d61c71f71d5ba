import { sql, type Kysely } from 'kysely'
import { TesseraError } from '../errors.js'
import type { Clock } from '../runtime/clock.js'
import { factTables, type Database, type Store } from '../store/index.js'
import { lockInventory, refreshNextExpiry } from './ingest.js'
import type { RunCounts, RunSummary } from './inventory-types.js'
import { iso } from './views.js'

interface RunDeps {
  store: Store
  clock: Clock
  newId: () => string
}

export async function startRun(
  deps: RunDeps,
  source: string,
  scope: 'full' | 'delta',
): Promise<RunSummary> {
  if (typeof source !== 'string' || source === '') {
    throw new TesseraError('TSR_VALIDATION', 'a run needs a source', {
      details: { field: 'source' },
    })
  }
  if (scope !== 'full' && scope !== 'delta') {
    throw new TesseraError('TSR_VALIDATION', 'scope must be full or delta', {
      details: { field: 'scope' },
    })
  }
  const row = {
    id: deps.newId(),
    source,
    scope,
    status: 'running' as const,
    started_at: deps.clock.now(),
    stats: {},
  }
  await deps.store.db
    .insertInto('discovery_run')
    .values({ ...row, started_at: row.started_at.toISOString(), stats: '{}' })
    .execute()
  return { id: row.id, source, scope, status: 'running', startedAt: row.started_at.toISOString() }
}

/**
 * Ends a run. A successful full run closes, in every fact table, each open version of its source
 * that it did not stamp: the fact was not seen, so it stopped being true when the run finished.
 */
export async function finishRun(
  deps: RunDeps,
  runId: string,
  outcome: 'succeeded' | 'failed' = 'succeeded',
  counts: RunCounts = {},
): Promise<RunSummary> {
  if (outcome !== 'succeeded' && outcome !== 'failed') {
    throw new TesseraError('TSR_VALIDATION', 'outcome must be succeeded or failed')
  }
  const countKeys = ['seen', 'new', 'changed', 'unchanged', 'errors'] as const
  for (const [key, value] of Object.entries(counts)) {
    if (!(countKeys as readonly string[]).includes(key)) {
      throw new TesseraError('TSR_VALIDATION', `counts.${key}: unknown (${countKeys.join(', ')})`)
    }
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new TesseraError('TSR_VALIDATION', `counts.${key}: a whole number ≥ 0`)
    }
  }
  return deps.store.transaction(async (tx) => {
    await lockInventory(tx.db)
    const run = await tx.db
      .selectFrom('discovery_run')
      .selectAll()
      .where('id', '=', runId)
      .forUpdate()
      .executeTakeFirst()
    if (!run) throw new TesseraError('TSR_NOT_FOUND', `no discovery run ${runId}`)
    if (run.status !== 'running') {
      throw new TesseraError('TSR_CONFLICT', `run ${runId} is already ${run.status}`)
    }
    const finished = deps.clock.now()
    let closed = 0
    if (outcome === 'succeeded' && run.scope === 'full') {
      closed = await closeUnseen(tx.db, run.source, runId, finished)
    }
    const recorded: RunCounts = {}
    for (const key of countKeys) if (counts[key] !== undefined) recorded[key] = counts[key]
    const stats = { ...recorded, closed }
    await tx.db
      .updateTable('discovery_run')
      .set({ status: outcome, finished_at: finished.toISOString(), stats: JSON.stringify(stats) })
      .where('id', '=', runId)
      .execute()
    return {
      id: run.id,
      source: run.source,
      scope: run.scope,
      status: outcome,
      startedAt: iso(run.started_at)!,
      finishedAt: finished.toISOString(),
      closed,
      ...(Object.keys(recorded).length > 0 ? { counts: recorded } : {}),
    }
  })
}

async function closeUnseen(
  db: Kysely<Database>,
  source: string,
  runId: string,
  finished: Date,
): Promise<number> {
  let closed = 0
  const at = finished.toISOString()
  for (const table of factTables) {
    if (table === 'credential') {
      // A closed credential no longer counts towards its identity's next expiry.
      const r = await sql<{ identity_id: string | null }>`
        update credential set valid_to = greatest(valid_from, ${at}::timestamptz)
        where source = ${source} and valid_to is null and run_id is distinct from ${runId}
        returning identity_id
      `.execute(db)
      closed += r.rows.length
      await refreshNextExpiry(
        db,
        r.rows.flatMap((row) => (row.identity_id === null ? [] : [row.identity_id])),
      )
      continue
    }
    const r = await sql`
      update ${sql.table(table)} set valid_to = greatest(valid_from, ${at}::timestamptz)
      where source = ${source} and valid_to is null and run_id is distinct from ${runId}
    `.execute(db)
    closed += Number(r.numAffectedRows ?? 0)
  }
  return closed
}
