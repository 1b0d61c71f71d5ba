import type { CertificateAuthority } from '../ca/ca-types.js'
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

/** Trust bundles by trust domain: this CA's and the federated ones. */
export function trustBundles(deps: {
  ca?: Pick<CertificateAuthority, 'bundle'>
  federation?: { bundles(): Promise<Map<string, TrustBundle>> }
}): () => Promise<ReadonlyMap<string, TrustBundle>> {
  return async () => {
    const out = new Map<string, TrustBundle>()
    if (deps.federation) for (const [td, b] of await deps.federation.bundles()) out.set(td, b)
    if (deps.ca) {
      const own = await deps.ca.bundle()
      out.set(own.trustDomain, own)
    }
    return out
  }
}
