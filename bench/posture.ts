/**
 * Posture budget (DESIGN.md §7): every posture rule evaluated over the 1,000,000-identity sample on
 * PostgreSQL in < 60 s. The sample is the seeded generator's (the one `bench inventory` ingests).
 *
 *   npm run bench -- posture [--identities N] [--database URL] [--schema NAME] [--seed-only]
 *                            [--keep] [--batch N] [--passes 1|2]
 *
 * Without `--schema` a fresh schema is seeded and dropped afterwards. With `--schema NAME` an
 * already seeded schema is reused (seeded first when empty), so a 1,000,000-identity graph is
 * ingested once (about 15 minutes on the bench machine) and the rules can be timed again and
 * again; `--seed-only` stops after seeding.
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { generateObservations } from '../scripts/generate-inventory.js'
import { createInventory, type Observation } from '../src/inventory/index.js'
import { openStore, type Store } from '../src/store/index.js'
import { dropSchema, freshSchemaName } from '../test/support/stores.js'
import { fmtInt, heading, progress, progressDone, report } from './support.js'

const seed = 42
export const sampleNow = new Date('2026-11-20T12:00:00Z')

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      identities: { type: 'string', default: '1000000' },
      database: { type: 'string' },
      schema: { type: 'string' },
      'seed-only': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      batch: { type: 'string', default: '5000' },
      passes: { type: 'string', default: '2' },
    },
  })
  const identities = positive(values.identities, 'identities')
  const batch = positive(values.batch, 'batch')
  const url =
    values.database ??
    process.env.TESSERA_BENCH_DATABASE_URL ??
    process.env.TESSERA_TEST_DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/postgres'
  const schema = values.schema ?? freshSchemaName()
  const store = await openStore({ backend: 'postgres', url, schema, poolSize: 4 })
  process.stdout.write(
    `posture benchmark: ${fmtInt(identities)} identities (seed ${seed}), schema ${schema}, ` +
      `node ${process.version}, ${new Date().toISOString()}\n`,
  )
  try {
    const have = Number(
      (await sql<{ n: string }>`select count(*) as n from identity`.execute(store.db)).rows[0]?.n ??
        0,
    )
    if (have === 0) await seedSample(store, identities, batch)
    else report('reusing seeded identities', fmtInt(have), `schema ${schema}`)
    if (values['seed-only']) return
    const { evaluate } = await import('./posture-evaluate.js')
    await evaluate(store, positive(values.passes, 'passes'))
  } finally {
    await store.close()
    if (values.schema === undefined && !values.keep) await dropSchema(url, schema)
  }
}

/** Ingests the seeded sample through the inventory, as `bench inventory` does. */
export async function seedSample(store: Store, identities: number, batch: number): Promise<void> {
  heading('seeding the sample (not timed against the budget)')
  const inventory = createInventory({ store })
  const t0 = performance.now()
  let done = 0
  let buf: Observation[] = []
  const flush = async () => {
    await inventory.ingest(buf)
    done += buf.length
    buf = []
    const s = (performance.now() - t0) / 1000
    progress(`ingest ${fmtInt(done)} observations, ${fmtInt(done / s)}/s`)
  }
  for (const obs of generateObservations({ seed, identities, now: sampleNow })) {
    buf.push(obs)
    if (buf.length >= batch) await flush()
  }
  if (buf.length > 0) await flush()
  progressDone()
  await sql`analyze`.execute(store.db)
  report(
    'seeded',
    `${fmtInt(done)} observations`,
    `in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  )
}

function positive(value: string, name: string): number {
  const n = Number(value.replaceAll('_', ''))
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`)
  return n
}
