/**
 * Inventory budget (DESIGN.md §7): 1,000,000 identities ingested into PostgreSQL in < 60 s, and a
 * filtered list p95 < 100 ms. The sample is the seeded generator's output (the same one that makes
 * examples/inventory.jsonl), so every run ingests the same facts.
 *
 *   npm run bench -- inventory [--identities N] [--backend postgres,pglite] [--database URL]
 *                              [--batch N] [--queries N] [--keep]
 *
 * For each backend it prints, in the same run: the generator alone (the floor), a raw bulk insert of
 * the identity rows into an unindexed table (the reference), the full versioned ingest, then the
 * latency of filtered list queries and of as-of queries after a second day of changes.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import { generateObservations } from '../scripts/generate-inventory.js'
import {
  createInventory,
  type IdentityFilter,
  type IngestProfile,
  type Inventory,
  type Observation,
} from '../src/inventory/index.js'
import { openStore, type Store } from '../src/store/index.js'
import { dropSchema, freshSchemaName } from '../test/support/stores.js'
import {
  fmtInt,
  fmtMs,
  heading,
  percentile,
  progress,
  progressDone,
  report,
  sample,
} from './support.js'

const seed = 42
const sampleNow = new Date('2026-11-20T12:00:00Z')

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      identities: { type: 'string', default: '1000000' },
      backend: { type: 'string', default: 'postgres,pglite' },
      database: { type: 'string' },
      batch: { type: 'string', default: '5000' },
      queries: { type: 'string', default: '100' },
      keep: { type: 'boolean', default: false },
    },
  })
  const identities = positive(values.identities, 'identities')
  const batch = positive(values.batch, 'batch')
  const queries = positive(values.queries, 'queries')
  const backends = values.backend.split(',').map((b) => b.trim())
  const url =
    values.database ??
    process.env.TESSERA_BENCH_DATABASE_URL ??
    process.env.TESSERA_TEST_DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/postgres'

  process.stdout.write(
    `inventory benchmark: ${fmtInt(identities)} identities (seed ${seed}), batches of ${fmtInt(batch)}, ` +
      `node ${process.version}, ${new Date().toISOString()}\n`,
  )

  heading('generator alone (floor: what producing the observations costs)')
  const counts = new Map<string, number>()
  const g0 = performance.now()
  let total = 0
  for (const obs of generateObservations({ seed, identities, now: sampleNow })) {
    counts.set(obs.type, (counts.get(obs.type) ?? 0) + 1)
    total++
  }
  const genSeconds = (performance.now() - g0) / 1000
  report(
    'observations generated',
    fmtInt(total),
    `in ${genSeconds.toFixed(1)} s (${fmtInt(total / genSeconds)}/s)`,
  )
  report('  by type', '', [...counts].map(([t, n]) => `${t} ${fmtInt(n)}`).join(', '))

  for (const backend of backends) {
    if (backend !== 'postgres' && backend !== 'pglite')
      throw new Error(`unknown backend ${backend}`)
    await benchBackend(backend, { identities, batch, queries, url, keep: values.keep, total })
  }
}

interface Options {
  identities: number
  batch: number
  queries: number
  url: string
  keep: boolean
  total: number
}

async function benchBackend(backend: 'postgres' | 'pglite', o: Options): Promise<void> {
  let store: Store
  let cleanup: () => Promise<void>
  if (backend === 'postgres') {
    const schema = freshSchemaName()
    store = await openStore({ backend: 'postgres', url: o.url, schema })
    cleanup = async () => {
      await store.close()
      if (!o.keep) await dropSchema(o.url, schema)
    }
    heading(`PostgreSQL (${store.location})`)
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-'))
    store = await openStore({ backend: 'pglite', dataDir: dir })
    cleanup = async () => {
      await store.close()
      if (!o.keep) rmSync(dir, { recursive: true, force: true })
    }
    heading(`PGlite on disk (${dir})`)
  }
  try {
    const raw = await rawBulkInsert(store, o)
    report(
      'reference: raw bulk insert, identity rows',
      `${fmtInt(raw.rate)} rows/s`,
      `${raw.rows} rows in ${raw.seconds.toFixed(1)} s, unindexed table`,
    )

    const ingestProfile: IngestProfile = new Map()
    const inventory = createInventory({ store, ingestProfile })
    const t0 = performance.now()
    let done = 0
    let batchBuf: Observation[] = []
    const sums = { inserted: 0, changed: 0, unchanged: 0 }
    const flush = async () => {
      const r = await inventory.ingest(batchBuf)
      sums.inserted += r.inserted
      sums.changed += r.changed
      sums.unchanged += r.unchanged
      done += batchBuf.length
      batchBuf = []
      const s = (performance.now() - t0) / 1000
      progress(`ingest ${fmtInt(done)}/${fmtInt(o.total)} observations, ${fmtInt(done / s)}/s`)
    }
    for (const obs of generateObservations({ seed, identities: o.identities, now: sampleNow })) {
      batchBuf.push(obs)
      if (batchBuf.length >= o.batch) await flush()
    }
    if (batchBuf.length > 0) await flush()
    progressDone()
    const seconds = (performance.now() - t0) / 1000
    // Every observation is one row written (a version, or a usage row), so observations/s is rows/s.
    const rowsPerSecond = done / seconds
    const budgetRate = 1_000_000 / 60
    report(
      'versioned ingest, whole sample',
      `${seconds.toFixed(1)} s`,
      `${fmtInt(o.identities)} identities, ${fmtInt(done)} observations (rows)`,
    )
    report('  identities/s', fmtInt(o.identities / seconds), '')
    report(
      '  rows/s (observations/s)',
      fmtInt(rowsPerSecond),
      `inserted ${fmtInt(sums.inserted)}, changed ${sums.changed}, unchanged ${sums.unchanged}`,
    )
    report(
      '  1,000,000 rows at this rate',
      `${(1_000_000 / rowsPerSecond).toFixed(1)} s`,
      backend === 'postgres'
        ? `budget < 60 s (≥ ${fmtInt(budgetRate)} rows/s): ${rowsPerSecond >= budgetRate ? 'met' : 'MISSED'}`
        : 'no budget (embedded)',
    )
    if (o.identities !== 1_000_000) {
      const perIdentity = done / o.identities
      report(
        '  1,000,000 identities at this rate',
        `${((1_000_000 * perIdentity) / rowsPerSecond).toFixed(0)} s`,
        `linear projection (${fmtInt(1_000_000 * perIdentity)} observations); run --identities 1000000 to measure`,
      )
    }
    report(
      '  vs raw bulk insert',
      `${((rowsPerSecond / raw.rate) * 100).toFixed(0)}%`,
      'of the reference rows/s',
    )

    report(
      '  where the time went',
      '',
      'ms summed per phase; lanes overlap, so they exceed wall time',
    )
    for (const [phase, ms] of [...ingestProfile].sort((a, b) => b[1] - a[1])) {
      report(
        `    ${phase}`,
        `${(ms / 1000).toFixed(1)} s`,
        `${((ms / 1000 / seconds) * 100).toFixed(0)}% of wall`,
      )
    }
    // What autovacuum does after a bulk load (inserts trigger it): statistics, and the visibility
    // map that lets the list walks read the narrow name index alone. Timed, not part of ingest.
    const v0 = performance.now()
    await sql`vacuum (analyze)`.execute(store.db)
    report(
      'vacuum (analyze) after the load',
      `${((performance.now() - v0) / 1000).toFixed(1)} s`,
      'not counted in the ingest time',
    )
    await queryLatency(inventory, o.queries, o.identities)
    await asOfLatency(inventory, o)
  } finally {
    await cleanup()
  }
}

/** The reference: the identity rows alone, bulk-inserted into a table with no index or constraint. */
async function rawBulkInsert(
  store: Store,
  o: Options,
): Promise<{ rate: number; rows: number; seconds: number }> {
  await sql`create table bench_raw (id uuid, ref text, kind text, name text, source text, attributes jsonb)`.execute(
    store.db,
  )
  const columns = ['id', 'ref', 'kind', 'name', 'source', 'attributes']
  let rows: unknown[][] = []
  let n = 0
  let busy = 0
  const flush = async () => {
    const t = performance.now()
    await store.bulkInsert('bench_raw', columns, rows as never)
    busy += performance.now() - t
    n += rows.length
    rows = []
    progress(`reference bulk insert ${fmtInt(n)}`)
  }
  for (const obs of generateObservations({ seed, identities: o.identities, now: sampleNow })) {
    if (obs.type !== 'identity') continue
    rows.push([randomUUID(), obs.ref, obs.kind, obs.name, obs.source, obs.attributes ?? {}])
    if (rows.length >= o.batch) await flush()
  }
  if (rows.length > 0) await flush()
  progressDone()
  await sql`drop table bench_raw`.execute(store.db)
  const seconds = busy / 1000
  return { rate: n / seconds, rows: n, seconds }
}

async function queryLatency(inventory: Inventory, runs: number, identities: number): Promise<void> {
  const first = await inventory.listIdentities({ limit: 1000 })
  const owner = first.items.find((i) => i.owner !== null)?.owner ?? 'nobody'
  const page1 = await inventory.listIdentities({ kind: 'iam_role', limit: 100 })
  const now = new Date()
  const filters: Array<[string, IdentityFilter]> = [
    ['kind=service_account', { kind: 'service_account' }],
    ['source=aws:prod kind=iam_role', { source: 'aws:prod', kind: 'iam_role' }],
    [`owner=${owner}`, { owner }],
    ['state=disabled', { state: 'disabled' }],
    ['unused since 90 days', { unusedSince: new Date(sampleNow.getTime() - 90 * 86_400_000) }],
    ['expires before +30 days', { expiresBefore: new Date(sampleNow.getTime() + 30 * 86_400_000) }],
    ['q=deploy', { q: 'deploy' }],
    [
      'kind=iam_role page 2 (cursor)',
      { kind: 'iam_role', ...(page1.nextCursor ? { cursor: page1.nextCursor } : {}) },
    ],
  ]
  heading(`filtered list, 100 per page, ${runs} runs each`)
  const all: number[] = []
  for (const [name, filter] of filters) {
    const lat = await sample(() => inventory.listIdentities({ limit: 100, ...filter }), runs)
    all.push(...lat)
    report(name, `p50 ${fmtMs(percentile(lat, 50))} ms`, `p95 ${fmtMs(percentile(lat, 95))} ms`)
  }
  const p95 = percentile(all, 95)
  report(
    'all filters',
    `p50 ${fmtMs(percentile(all, 50))} ms`,
    `p95 ${fmtMs(p95)} ms (budget p95 < 100 ms at 1,000,000 identities: ${identities < 1_000_000 ? 'not judged at this size' : p95 < 100 ? 'met' : 'MISSED'}); now=${now.toISOString()}`,
  )
}

/**
 * A second day: 1% of the identities change state. Then the same questions are asked as of the first
 * day, which must still see the old state.
 */
async function asOfLatency(inventory: Inventory, o: Options): Promise<void> {
  const dayOne = new Date()
  await new Promise((r) => setTimeout(r, 20))
  const changed: Observation[] = []
  let i = 0
  for (const obs of generateObservations({ seed, identities: o.identities, now: sampleNow })) {
    if (obs.type !== 'identity') continue
    if (i++ % 100 === 0) {
      const state = obs.state === 'disabled' ? 'active' : 'disabled'
      changed.push({ ...obs, state, observedAt: new Date().toISOString() })
    }
  }
  const t0 = performance.now()
  for (let k = 0; k < changed.length; k += o.batch)
    await inventory.ingest(changed.slice(k, k + o.batch))
  report(
    'second day: changed identities re-ingested',
    fmtInt(changed.length),
    `in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  )

  const probe = changed[Math.floor(changed.length / 2)]!
  const ref = probe.type === 'identity' ? probe.ref : ''
  heading(`as-of queries (at ${dayOne.toISOString()}), ${o.queries} runs each`)
  const cases: Array<[string, () => Promise<unknown>]> = [
    [
      'list state=disabled as of day one',
      () => inventory.listIdentities({ state: 'disabled', at: dayOne, limit: 100 }),
    ],
    [
      'list kind=iam_role as of day one',
      () => inventory.listIdentities({ kind: 'iam_role', at: dayOne, limit: 100 }),
    ],
    ['show one identity as of day one', () => inventory.getIdentity(ref, dayOne)],
    ['show the same identity now', () => inventory.getIdentity(ref)],
  ]
  for (const [name, fn] of cases) {
    const lat = await sample(fn, o.queries)
    report(name, `p50 ${fmtMs(percentile(lat, 50))} ms`, `p95 ${fmtMs(percentile(lat, 95))} ms`)
  }
  const before = await inventory.getIdentity(ref, dayOne)
  const after = await inventory.getIdentity(ref)
  report(
    'as-of answer differs from now',
    String(before?.state !== after?.state),
    `${before?.state} → ${after?.state}`,
  )
}

function positive(value: string, name: string): number {
  const n = Number(value.replaceAll('_', ''))
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`)
  return n
}
