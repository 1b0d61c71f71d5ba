import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createInventory } from '../inventory/index.js'
import type { Observation } from '../inventory/observation.js'
import { createFixedClock } from '../runtime/clock.js'
import { openStore, type Store } from '../store/index.js'
import type { Connector } from './connector.js'
import { nodeFileReader } from './files.js'
import { createDiscoveryScheduler, type Timers } from './scheduler.js'

/** Timers that fire only when the test says so. */
function manualTimers() {
  let next = 1
  const pending = new Map<number, { fn: () => void; ms: number }>()
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      const id = next++
      pending.set(id, { fn, ms })
      return id as unknown as { unref?(): void }
    },
    clearTimeout: (h) => pending.delete(h as unknown as number),
  }
  return {
    timers,
    pending: () => [...pending.values()].map((p) => p.ms),
    fire() {
      const all = [...pending.entries()]
      pending.clear()
      for (const [, p] of all) p.fn()
    },
  }
}

describe('discovery scheduler', () => {
  let store: Store
  before(async () => {
    store = await openStore({ backend: 'pglite' })
  })
  after(() => store.close())

  it('runs each scheduled source now, then an interval after each run ends, never twice at once', async () => {
    let runs = 0
    let release: () => void = () => {}
    const connector: Connector = {
      kind: 'aws',
      name: 'fake:slow',
      scope: 'full',
      async *discover(): AsyncGenerator<Observation> {
        runs++
        await new Promise<void>((r) => (release = r))
        yield {
          type: 'resource',
          source: 'fake:slow',
          ref: `r${runs}`,
          resourceType: 'thing',
          name: 'r',
        }
      },
    }
    const logs: string[] = []
    const t = manualTimers()
    const clock = createFixedClock('2026-11-20T12:00:00Z')
    const scheduler = createDiscoveryScheduler({
      sources: [
        { name: 'fake:slow', type: 'aws', scope: 'full', intervalMs: 3_600_000, connector },
        {
          name: 'fake:manual',
          type: 'aws',
          scope: 'full',
          connector: { ...connector, name: 'fake:manual' },
        },
      ],
      runner: {
        inventory: createInventory({ store, clock }),
        context: { clock, files: nodeFileReader },
      },
      log: {
        info: (o, m) => logs.push(`${m} ${JSON.stringify(o)}`),
        error: (o, m) => logs.push(`${m} ${JSON.stringify(o)}`),
      },
      timers: t.timers,
    })
    scheduler.start()
    assert.deepEqual(t.pending(), [0], 'only the source with an interval, at once')
    t.fire()
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(runs, 1)
    // Asked again while running: the same run, not a second one.
    const again = scheduler.runNow('fake:slow')
    assert.equal(runs, 1)
    assert.deepEqual(t.pending(), [], 'the next run is scheduled when this one ends')
    release()
    const stats = await again
    assert.equal(stats?.status, 'succeeded')
    await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(t.pending(), [3_600_000])
    assert.match(logs[0]!, /^discovery run finished .*"source":"fake:slow".*"seen":1/)
    await scheduler.stop()
    assert.deepEqual(t.pending(), [], 'stop cancels the timer')
  })
})
