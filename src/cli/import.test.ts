import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TesseraError } from '../errors.js'
import type { IngestOptions, Inventory, RunSummary } from '../inventory/inventory-types.js'
import type { JsonLinesEntry } from '../inventory/observation-parse.js'
import type { Observation } from '../inventory/observation.js'
import { importObservations } from './import.js'

/** An Inventory that records ingest batches and runs; only what the import loop calls. */
function fakeInventory(options: { rejectRef?: string } = {}) {
  const batches: { refs: string[]; runs: Record<string, string> | undefined }[] = []
  const runs: RunSummary[] = []
  const finished: { id: string; outcome: string | undefined }[] = []
  const unused = () => {
    throw new Error('not used by import')
  }
  const inventory: Inventory = {
    async ingest(observations: readonly Observation[], opts?: IngestOptions) {
      const refs = observations.map((o) => ('ref' in o ? o.ref : o.type))
      const bad = refs.indexOf(options.rejectRef ?? '\0')
      if (bad >= 0) {
        throw new TesseraError('TSR_OBSERVATION_INVALID', 'invalid', {
          details: { errors: [{ index: bad, reason: 'server says no' }] },
        })
      }
      batches.push({ refs, runs: opts?.runs ? { ...opts.runs } : undefined })
      return {
        received: observations.length,
        inserted: observations.length,
        changed: 0,
        unchanged: 0,
      }
    },
    async startRun(source, scope) {
      const run: RunSummary = {
        id: `run-${runs.length + 1}`,
        source,
        scope,
        status: 'running',
        startedAt: 'now',
      }
      runs.push(run)
      return run
    },
    async finishRun(id, outcome) {
      finished.push({ id, outcome })
      const run = runs.find((r) => r.id === id)!
      return { ...run, status: outcome ?? 'succeeded', closed: 0 }
    },
    listIdentities: unused,
    getIdentity: unused,
    neighbourhood: unused,
    exportObservations: unused,
    stats: unused,
  }
  return { inventory, batches, runs, finished }
}

const identity = (ref: string, source = 'aws:prod'): Observation => ({
  type: 'identity',
  source,
  ref,
  kind: 'iam_role',
  name: ref,
})

async function* entries(list: JsonLinesEntry[]): AsyncGenerator<JsonLinesEntry> {
  yield* list
}

describe('importObservations', () => {
  it('ingests valid lines in batches and reports invalid ones by line', async () => {
    const f = fakeInventory()
    const invalid: string[] = []
    const result = await importObservations({
      entries: entries([
        { line: 1, observation: identity('a') },
        { line: 2, error: 'invalid JSON: x' },
        { line: 3, observation: identity('b') },
        { line: 4, observation: identity('c') },
        { line: 5, error: 'kind: bad' },
      ]),
      inventory: f.inventory,
      batchSize: 2,
      onInvalid: (line, reason) => invalid.push(`${line}: ${reason}`),
    })
    assert.deepEqual(
      f.batches.map((b) => b.refs),
      [['a', 'b'], ['c']],
    )
    assert.deepEqual(invalid, ['2: invalid JSON: x', '5: kind: bad'])
    assert.equal(result.received, 3)
    assert.equal(result.invalid, 2)
    assert.equal(result.lines, 5)
    assert.deepEqual(f.runs, [])
  })

  it('--full starts a run per source as it first appears and finishes all as succeeded', async () => {
    const f = fakeInventory()
    const result = await importObservations({
      entries: entries([
        { line: 1, observation: identity('a', 'aws:prod') },
        { line: 2, observation: identity('b', 'aws:prod') },
        { line: 3, observation: identity('c', 'k8s:eu') },
      ]),
      inventory: f.inventory,
      batchSize: 2,
      full: 'all',
    })
    assert.deepEqual(
      f.runs.map((r) => [r.source, r.scope]),
      [
        ['aws:prod', 'full'],
        ['k8s:eu', 'full'],
      ],
    )
    assert.deepEqual(f.batches[0]!.runs, { 'aws:prod': 'run-1' })
    assert.deepEqual(f.batches[1]!.runs, { 'aws:prod': 'run-1', 'k8s:eu': 'run-2' })
    assert.deepEqual(f.finished, [
      { id: 'run-1', outcome: 'succeeded' },
      { id: 'run-2', outcome: 'succeeded' },
    ])
    assert.deepEqual(
      result.runs.map((r) => r.status),
      ['succeeded', 'succeeded'],
    )
  })

  it('fails the full runs when any line was invalid, so nothing is closed on partial data', async () => {
    const f = fakeInventory()
    await importObservations({
      entries: entries([
        { line: 1, observation: identity('a') },
        { line: 2, error: 'bad' },
      ]),
      inventory: f.inventory,
      batchSize: 10,
      full: ['aws:prod', 'aws:prod', 'gcp:data'],
    })
    assert.deepEqual(
      f.runs.map((r) => r.source),
      ['aws:prod', 'gcp:data'],
    )
    assert.deepEqual(
      f.finished.map((r) => r.outcome),
      ['failed', 'failed'],
    )
  })

  it('fails the runs and rethrows when ingestion breaks', async () => {
    const f = fakeInventory()
    f.inventory.ingest = async () => {
      throw new TesseraError('TSR_STORE_UNAVAILABLE', 'gone')
    }
    await assert.rejects(
      importObservations({
        entries: entries([{ line: 1, observation: identity('a') }]),
        inventory: f.inventory,
        batchSize: 10,
        full: 'all',
      }),
      (err) => err instanceof TesseraError && err.code === 'TSR_STORE_UNAVAILABLE',
    )
    assert.deepEqual(f.finished, [{ id: 'run-1', outcome: 'failed' }])
  })

  it('when the server rejects items, reports them by line and still ingests the rest', async () => {
    const f = fakeInventory({ rejectRef: 'b' })
    const invalid: string[] = []
    const result = await importObservations({
      entries: entries([
        { line: 1, observation: identity('a') },
        { line: 7, observation: identity('b') },
        { line: 9, observation: identity('c') },
      ]),
      inventory: f.inventory,
      batchSize: 10,
      onInvalid: (line, reason) => invalid.push(`${line}: ${reason}`),
    })
    assert.deepEqual(invalid, ['7: server says no'])
    assert.deepEqual(
      f.batches.map((b) => b.refs),
      [['a', 'c']],
    )
    assert.equal(result.received, 2)
    assert.equal(result.invalid, 1)
  })
})
