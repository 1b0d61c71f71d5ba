import type { EventSink } from '../audit/event-sink.js'
import { createRevocationList } from '../lifecycle/revocations.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { TrustBundle } from '../spiffe/types.js'
import type { Store } from '../store/store.js'
import { createAuthorizer, type Authorizer } from './authorizer.js'
import type { SchemaJson } from './cedar.js'
import { deriveCedarSchema } from './cedar-schema.js'
import { createEntityCache } from './entities.js'
import { createCedarPolicyStore, type CedarPolicyStore } from './policy-store.js'

/** Authorization over one store: the authorizer, its versioned policies and the derived schema. */
export interface AuthzService {
  authorizer: Authorizer
  policies: CedarPolicyStore
  /** The Cedar schema derived from the graph now. */
  schema(): Promise<SchemaJson<string>>
}

export interface AuthzServiceDeps {
  store: Store
  clock?: Clock
  events?: EventSink
  bundles?: () => Promise<ReadonlyMap<string, TrustBundle>>
  jwtAudience?: string
  refreshMs?: number
  extraActions?: readonly string[]
  onEventError?: (err: unknown, lost: number) => void
}

/** The audience JWT principals must name by default: the trust domain's authorization service. */
export function defaultAuthzAudience(trustDomain: string): string {
  return `spiffe://${trustDomain}/tessera/authz`
}

export function createAuthzService(deps: AuthzServiceDeps): AuthzService {
  const clock = deps.clock ?? systemClock
  const extra = deps.extraActions ? { extraActions: deps.extraActions } : {}
  const schema = () => deriveCedarSchema(deps.store, extra)
  const policies = createCedarPolicyStore({
    store: deps.store,
    clock,
    schema,
    ...(deps.events ? { events: deps.events } : {}),
  })
  const authorizer = createAuthorizer({
    policies,
    entities: createEntityCache({ store: deps.store }),
    revocations: createRevocationList({ store: deps.store, clock }),
    clock,
    ...(deps.events ? { events: deps.events } : {}),
    ...(deps.bundles ? { bundles: deps.bundles } : {}),
    ...(deps.jwtAudience ? { jwtAudience: deps.jwtAudience } : {}),
    ...(deps.refreshMs !== undefined ? { refreshMs: deps.refreshMs } : {}),
    ...(deps.onEventError ? { onEventError: deps.onEventError } : {}),
  })
  return { authorizer, policies, schema }
}
