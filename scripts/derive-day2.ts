/**
 * Derives `examples/aws-prod-day2.jsonl` from `examples/inventory.jsonl`: the next day's full discovery
 * run of the `aws:prod` source, for the README's as-of walk-through. Deterministic (no randomness):
 *
 * - every 20th aws:prod identity is gone (deleted in AWS), with every aws:prod fact that mentions it;
 * - every 15th remaining aws:prod identity is now `disabled`;
 * - everything else of aws:prod is seen again unchanged.
 *
 * Importing it with `tessera inventory import examples/aws-prod-day2.jsonl --full` closes the facts
 * that the run no longer sees (they stay answerable as of an earlier instant) and versions the changes.
 *
 *   npx tsx scripts/derive-day2.ts [--in examples/inventory.jsonl] [--out examples/aws-prod-day2.jsonl]
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { Observation } from '../src/inventory/index.js'

export const day2Source = 'aws:prod'

export function deriveDay2(observations: readonly Observation[]): Observation[] {
  const mine = observations.filter((o) => o.source === day2Source)
  const gone = new Set<string>()
  const disabled = new Set<string>()
  let n = 0
  for (const o of mine) {
    if (o.type !== 'identity') continue
    if (n % 20 === 0) gone.add(o.ref)
    n++
  }
  let m = 0
  for (const o of mine) {
    if (o.type !== 'identity' || gone.has(o.ref)) continue
    if (m % 15 === 0) disabled.add(o.ref)
    m++
  }
  const goneCredentials = new Set(
    mine
      .filter((o) => o.type === 'credential' && o.identity && gone.has(o.identity))
      .map((o) => (o.type === 'credential' ? o.ref : '')),
  )
  const mentionsGone = (o: Observation): boolean => {
    switch (o.type) {
      case 'identity':
        return gone.has(o.ref)
      case 'credential':
        return goneCredentials.has(o.ref)
      case 'location':
        return goneCredentials.has(o.credential)
      case 'grant':
      case 'usage':
        return gone.has(o.identity)
      case 'edge':
        return (
          gone.has(o.from.ref) ||
          gone.has(o.to.ref) ||
          goneCredentials.has(o.from.ref) ||
          goneCredentials.has(o.to.ref)
        )
      default:
        return false
    }
  }
  return mine
    .filter((o) => !mentionsGone(o))
    .map((o) =>
      o.type === 'identity' && disabled.has(o.ref) ? { ...o, state: 'disabled' as const } : o,
    )
}

export function readJsonl(path: string): Observation[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Observation)
}

export function renderJsonl(observations: readonly Observation[]): string {
  return observations.map((o) => JSON.stringify(o)).join('\n') + '\n'
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      in: { type: 'string', default: 'examples/inventory.jsonl' },
      out: { type: 'string', default: 'examples/aws-prod-day2.jsonl' },
    },
  })
  const day2 = deriveDay2(readJsonl(values.in))
  writeFileSync(values.out, renderJsonl(day2))
  process.stderr.write(`wrote ${day2.length} observations of ${day2Source} to ${values.out}\n`)
}
