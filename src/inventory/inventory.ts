import { randomUUID } from 'node:crypto'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Store } from '../store/index.js'
import { exportObservations } from './export.js'
import { neighbourhood } from './graph.js'
import { ingestObservations, type IngestProfile } from './ingest.js'
import type { Inventory } from './inventory-types.js'
import { getIdentity, listIdentities, stats } from './queries.js'
import { finishRun, startRun } from './runs.js'

export interface InventoryDeps {
  store: Store
  clock?: Clock
  /** Makes discovery run ids; random UUIDs unless a test wants fixed ones. */
  newId?: () => string
  /** Collects ingest time per phase (the benchmark's breakdown). */
  ingestProfile?: IngestProfile
}

/**
 * The inventory over the versioned fact tables of the store. Stateless: every call goes to the
 * store, so several processes can share one PostgreSQL.
 */
export function createInventory({
  store,
  clock = systemClock,
  newId = randomUUID,
  ingestProfile,
}: InventoryDeps): Inventory {
  const deps = { store, clock, newId }
  const ingestDeps = ingestProfile ? { ...deps, profile: ingestProfile } : deps
  return {
    ingest: (observations, options) => ingestObservations(ingestDeps, observations, options),
    startRun: (source, scope) => startRun(deps, source, scope),
    finishRun: (runId, outcome, counts) => finishRun(deps, runId, outcome, counts),
    listIdentities: (filter) => listIdentities(store.db, filter),
    getIdentity: (idOrRef, at) => getIdentity(store.db, idOrRef, at),
    neighbourhood: (idOrRef, options) => neighbourhood(store.db, idOrRef, options),
    exportObservations: (options) => exportObservations(store.db, options),
    stats: () => stats(store.db),
  }
}
