import { performance } from 'node:perf_hooks'
import { sql } from 'kysely'
import { createPosture } from '../src/posture/index.js'
import { createFixedClock } from '../src/runtime/clock.js'
import type { Store } from '../src/store/index.js'
import { fmtInt, heading, report } from './support.js'

/** The sample's own "now", so ages and expiries read as the generator meant them. */
const sampleNow = new Date('2026-11-20T12:00:00Z')

/**
 * Evaluates every rule over the store, twice: the first run opens every finding, the second (the
 * steady state of a scheduled run) finds them again and resolves nothing. Both are timed.
 */
export async function evaluate(store: Store, passes = 2): Promise<void> {
  const identities = Number(
    (
      await sql<{ n: string }>`select count(*) as n from identity where valid_to is null`.execute(
        store.db,
      )
    ).rows[0]?.n ?? 0,
  )
  const posture = createPosture({
    store,
    clock: createFixedClock(sampleNow),
    // Production secrets of the prod account are the crown jewels of the sample.
    config: { crownJewels: ['arn:aws:secretsmanager:*:123456789012:secret:prod/*'] },
  })
  await sql`analyze`.execute(store.db)
  for (const pass of ['first run (opens every finding)', 'second run (steady state)'].slice(
    0,
    passes,
  )) {
    heading(`${pass}, ${fmtInt(identities)} identities`)
    const t0 = performance.now()
    const result = await posture.run({
      onProgress: ({ rule }) => {
        if (rule && process.stderr.isTTY) process.stderr.write(`\r${rule}\x1b[K`)
      },
    })
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K')
    const seconds = (performance.now() - t0) / 1000
    let total = 0
    for (const r of result.rules) {
      total += r.found
      report(
        `  ${r.rule}`,
        `${(r.ms / 1000).toFixed(2)} s`,
        `${fmtInt(r.found)} findings (opened ${fmtInt(r.opened)}, resolved ${fmtInt(r.resolved)})`,
      )
    }
    report('  risk scores', fmtInt(result.riskScores), 'identities scored')
    report(
      'all rules + risk scores',
      `${seconds.toFixed(1)} s`,
      `${fmtInt(total)} findings; budget < 60 s at 1,000,000 identities: ${
        identities < 1_000_000 ? 'not judged at this size' : seconds < 60 ? 'met' : 'MISSED'
      }`,
    )
  }
}
