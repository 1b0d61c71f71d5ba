import { createEntries } from '../../entries/entries.js'
import type { Entries } from '../../entries/entry-types.js'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import type { TesseraApp } from '../app-types.js'
import { registerAgentAdminRoutes } from './agents.js'
import { registerEntryRoutes } from './entries.js'
import { registerJoinTokenRoutes } from './join-tokens.js'

/** What the SPIFFE control plane needs beyond the store; all optional. */
export interface ControlPlaneDeps {
  /** Replaces the store-backed entries (tests). */
  entries?: Entries
}

/**
 * Registers the SPIFFE control plane: registration entries, join tokens, agent admin and the agent
 * API. Each group in its own encapsulated scope.
 */
export async function registerControlPlaneRoutes(
  app: TesseraApp,
  deps: ControlPlaneDeps & { store: Store; clock: Clock },
): Promise<void> {
  const { store, clock } = deps
  const entries = deps.entries ?? createEntries({ store, clock })
  await app.register(async (scope) => registerEntryRoutes(scope, { entries }))
  await app.register(async (scope) => registerJoinTokenRoutes(scope, { store, clock }))
  await app.register(async (scope) => registerAgentAdminRoutes(scope, { store }))
}
