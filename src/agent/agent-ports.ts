import type { KeyObject } from 'node:crypto'
import type { JwtSvidResult, X509SvidResult } from '../ca/ca-types.js'
import type { RegistrationEntry, Revocation, TrustBundle } from '../spiffe/types.js'

/**
 * What the node agent needs from the control plane, once attested. The agent core (SVID cache,
 * rotation, Workload API) depends only on this port; `src/agent/sync/` implements it over the
 * server's agent API, and tests use an in-memory fake.
 */
export interface AgentControlPort {
  /** The entries this agent may serve (its own and descendants), kept current by deltas. */
  entries(): ReadonlyMap<string, RegistrationEntry>
  /** Own trust bundle and federated bundles, by trust domain. */
  bundles(): ReadonlyMap<string, TrustBundle>
  /** Current deny-list. */
  revocations(): readonly Revocation[]
  /** Called after any of the three above changed. Returns an unsubscribe function. */
  onChange(listener: (what: 'entries' | 'bundles' | 'revocations') => void): () => void
  /** Batch signing: one server round trip for many workloads. `publicKey`: a KeyObject or SPKI DER. */
  signX509Svids(
    requests: readonly { entryId: string; publicKey: KeyObject | Uint8Array }[],
  ): Promise<X509SvidResult[]>
  mintJwtSvid(request: { entryId: string; audience: readonly string[] }): Promise<JwtSvidResult>
  /** True while the server answers; the agent keeps serving cached SVIDs when false. */
  connected(): boolean
}
