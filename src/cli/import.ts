import { TesseraError } from '../errors.js'
import type { Inventory, RunSummary } from '../inventory/inventory-types.js'
import type { JsonLinesEntry } from '../inventory/observation-parse.js'
import type { Observation } from '../inventory/observation.js'

/**
 * The import loop behind `tessera inventory import`, apart from files and terminals so it can be
 * tested with any entry stream and inventory.
 *
 * Full runs: with `full: 'all'` a full discovery run is started for each source the moment its first
 * observation reaches a batch (no pre-scan, so the file is read once and may be a pipe); with
 * `full: [sources]` runs are started up front for just those. At the end every run is finished:
 * `succeeded` when every line was valid and ingested (so the facts of those sources that the file
 * did not mention are closed), `failed` otherwise (so a bad line can never close a fact it
 * was meant to keep alive).
 */
export interface ImportOptions {
  entries: AsyncIterable<JsonLinesEntry>
  inventory: Inventory
  batchSize: number
  full?: 'all' | readonly string[]
  /** Called for each rejected line, in order. */
  onInvalid?: (line: number, reason: string) => void
  /** Called after each batch is ingested. */
  onBatch?: (progress: ImportTotals) => void
}

export interface ImportTotals {
  lines: number
  received: number
  inserted: number
  changed: number
  unchanged: number
  invalid: number
}

export interface ImportResult extends ImportTotals {
  runs: RunSummary[]
}

export async function importObservations(options: ImportOptions): Promise<ImportResult> {
  const { inventory } = options
  const totals: ImportTotals = {
    lines: 0,
    received: 0,
    inserted: 0,
    changed: 0,
    unchanged: 0,
    invalid: 0,
  }
  const runs = new Map<string, string>()
  const fullAll = options.full === 'all'
  const invalid = (line: number, reason: string) => {
    totals.invalid++
    options.onInvalid?.(line, reason)
  }

  let finished = false
  const finishRuns = async (outcome: 'succeeded' | 'failed'): Promise<RunSummary[]> => {
    finished = true
    const out: RunSummary[] = []
    for (const id of runs.values()) out.push(await inventory.finishRun(id, outcome))
    return out
  }

  try {
    if (Array.isArray(options.full)) {
      for (const source of new Set(options.full)) {
        runs.set(source, (await inventory.startRun(source, 'full')).id)
      }
    }
    let batch: Observation[] = []
    let batchLines: number[] = []
    const flush = async () => {
      if (batch.length === 0) return
      if (fullAll) {
        for (const o of batch) {
          if (!runs.has(o.source))
            runs.set(o.source, (await inventory.startRun(o.source, 'full')).id)
        }
      }
      let pending = batch
      let lines = batchLines
      for (let attempt = 0; pending.length > 0; attempt++) {
        try {
          const result = await inventory.ingest(
            pending,
            runs.size > 0 ? { runs: Object.fromEntries(runs) } : undefined,
          )
          totals.received += result.received
          totals.inserted += result.inserted
          totals.changed += result.changed
          totals.unchanged += result.unchanged
          break
        } catch (err) {
          // The parser checked every line, so a server rejecting items means the two disagree
          // (different versions). The server rejects the whole batch: report the items it named
          // by line, and send the rest once more.
          const items = rejectedItems(err)
          if (!items || items.length === 0 || attempt > 0) throw err
          const bad = new Set(items.map((i) => i.index))
          for (const { index, reason } of items) invalid(lines[index] ?? 0, reason)
          pending = pending.filter((_, i) => !bad.has(i))
          lines = lines.filter((_, i) => !bad.has(i))
        }
      }
      batch = []
      batchLines = []
      options.onBatch?.({ ...totals })
    }
    for await (const entry of options.entries) {
      totals.lines = Math.max(totals.lines, entry.line)
      if ('error' in entry) {
        invalid(entry.line, entry.error)
        continue
      }
      batch.push(entry.observation)
      batchLines.push(entry.line)
      if (batch.length >= options.batchSize) await flush()
    }
    await flush()
    const summaries = await finishRuns(totals.invalid === 0 ? 'succeeded' : 'failed')
    return { ...totals, runs: summaries }
  } catch (err) {
    if (!finished && runs.size > 0) await finishRuns('failed').catch(() => {})
    throw err
  }
}

/** The `errors: [{index, reason}]` of a 422 rejection, or undefined for any other error. */
function rejectedItems(err: unknown): { index: number; reason: string }[] | undefined {
  if (!(err instanceof TesseraError) || err.code !== 'TSR_OBSERVATION_INVALID') return undefined
  const errors = err.details?.errors
  if (!Array.isArray(errors)) return []
  return errors.flatMap((e: unknown) => {
    const item = e as { index?: unknown; reason?: unknown }
    return typeof item.index === 'number'
      ? [{ index: item.index, reason: typeof item.reason === 'string' ? item.reason : 'rejected' }]
      : []
  })
}
