import { TesseraError, isTesseraError } from '../errors.js'
import type { Inventory } from '../inventory/inventory-types.js'
import { parseObservation } from '../inventory/observation-parse.js'
import type { Observation } from '../inventory/observation.js'
import type { Connector, DiscoverContext } from './connector.js'

/** What one source's run did. `seen = new + changed + unchanged` (valid observations ingested). */
export interface SourceRunStats {
  source: string
  kind: string
  scope: 'full' | 'delta'
  runId: string
  status: 'succeeded' | 'failed'
  seen: number
  new: number
  changed: number
  unchanged: number
  /** Facts a successful full run closed because it did not see them again. */
  closed: number
  /** Problems: bad input positions, invalid observations, an unreachable source. */
  errors: number
  /** The first problems, as `CODE: message` (never input content). */
  problems: string[]
  durationMs: number
}

export interface RunnerDeps {
  inventory: Pick<Inventory, 'ingest' | 'startRun' | 'finishRun'>
  /** The context handed to each connector, minus `report` (the runner owns that). */
  context: Omit<DiscoverContext, 'report'>
  /** Monotonic milliseconds, for durations. */
  now?: () => number
}

export interface RunOptions {
  /** Observations per ingest call (default 1000). */
  batchSize?: number
  /** Called after each batch and when a source ends. */
  onProgress?: (event: RunProgress) => void
}

export interface RunProgress {
  source: string
  phase: 'batch' | 'done'
  seen: number
  errors: number
}

const maxProblems = 20

/**
 * Runs connectors one after another, each under a discovery run of its own name. A source that
 * reports or throws an error still has its valid observations ingested, but its run is finished as
 * failed, so a full run never closes facts it only failed to read.
 */
export async function runConnectors(
  deps: RunnerDeps,
  connectors: readonly Connector[],
  options: RunOptions = {},
): Promise<SourceRunStats[]> {
  const results: SourceRunStats[] = []
  for (const connector of connectors) results.push(await runConnector(deps, connector, options))
  return results
}

export async function runConnector(
  deps: RunnerDeps,
  connector: Connector,
  options: RunOptions = {},
): Promise<SourceRunStats> {
  const now = deps.now ?? (() => performance.now())
  const started = now()
  const batchSize = options.batchSize ?? 1000
  const run = await deps.inventory.startRun(connector.name, connector.scope)
  const stats: SourceRunStats = {
    source: connector.name,
    kind: connector.kind,
    scope: connector.scope,
    runId: run.id,
    status: 'succeeded',
    seen: 0,
    new: 0,
    changed: 0,
    unchanged: 0,
    closed: 0,
    errors: 0,
    problems: [],
    durationMs: 0,
  }
  const problem = (err: unknown) => {
    stats.errors++
    if (stats.problems.length < maxProblems) {
      stats.problems.push(
        isTesseraError(err) ? `${err.code}: ${err.message}` : `TSR_INTERNAL: ${String(err)}`,
      )
    }
  }
  let batch: Observation[] = []
  const flush = async () => {
    if (batch.length === 0) return
    const r = await deps.inventory.ingest(batch, { runs: { [connector.name]: run.id } })
    stats.seen += r.received
    stats.new += r.inserted
    stats.changed += r.changed
    stats.unchanged += r.unchanged
    batch = []
    options.onProgress?.({
      source: connector.name,
      phase: 'batch',
      seen: stats.seen,
      errors: stats.errors,
    })
  }
  let storeFailure: unknown
  try {
    const ctx: DiscoverContext = { ...deps.context, report: problem }
    for await (const raw of connector.discover(ctx)) {
      // The runner, not the connector, decides the source: a run only stamps its own facts.
      const checked = parseObservation({ ...raw, source: connector.name })
      if (!checked.ok) {
        problem(
          new TesseraError(
            'TSR_OBSERVATION_INVALID',
            `${connector.name}: ${raw.type} observation: ${checked.reason}`,
          ),
        )
        continue
      }
      batch.push(checked.observation)
      if (batch.length >= batchSize) {
        try {
          await flush()
        } catch (err) {
          storeFailure = err
          break
        }
      }
    }
  } catch (err) {
    problem(err)
  }
  if (storeFailure === undefined) {
    try {
      await flush()
    } catch (err) {
      storeFailure = err
    }
  }
  if (storeFailure !== undefined) {
    // The store, not the input, failed: end the run and let the caller see the real error.
    await deps.inventory.finishRun(run.id, 'failed').catch(() => undefined)
    throw storeFailure
  }
  const outcome = stats.errors === 0 ? 'succeeded' : 'failed'
  const finished = await deps.inventory.finishRun(run.id, outcome, {
    seen: stats.seen,
    new: stats.new,
    changed: stats.changed,
    unchanged: stats.unchanged,
    errors: stats.errors,
  })
  stats.status = outcome
  stats.closed = finished.closed ?? 0
  stats.durationMs = Math.round(now() - started)
  options.onProgress?.({
    source: connector.name,
    phase: 'done',
    seen: stats.seen,
    errors: stats.errors,
  })
  return stats
}
