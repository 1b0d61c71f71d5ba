import type { JsonWebKey } from 'node:crypto'

/**
 * Shared SPIFFE data shapes. Pure types: the CA, the control plane's agent API, the node agent and
 * the Workload API all meet at these, so each can be built and tested on its own.
 */

/** `type:value`, e.g. `unix:uid:1000`, `k8s:ns:prod`, `join_token:7f3c…`. */
export interface Selector {
  type: string
  value: string
}

/** A registration entry as the agent and the control plane see it (current version). */
export interface RegistrationEntry {
  id: string
  /** Bumped on every change; agents sync by revision. */
  revision: number
  spiffeId: string
  parentId: string
  selectors: Selector[]
  /** Seconds; undefined means the server default (X.509 1 h, JWT 5 min). */
  x509SvidTtl?: number
  jwtSvidTtl?: number
  dnsNames: string[]
  federatesWith: string[]
  hint?: string
  admin: boolean
  downstream: boolean
  owner: string
  expiresAt?: Date
}

/** One change in an agent's entry stream. A delete carries the id and the revision only. */
export type EntryDelta =
  | { op: 'upsert'; revision: number; entry: RegistrationEntry }
  | { op: 'delete'; revision: number; id: string }

/** A JWT authority as served in a bundle (public JWK with its kid). */
export interface JwtAuthority {
  kid: string
  publicKey: JsonWebKey
  expiresAt?: Date
}

/** The trust bundle of one trust domain. */
export interface TrustBundle {
  /** Trust domain name without the scheme, e.g. `example.org`. */
  trustDomain: string
  /** Root (or upstream-rooted) CA certificates, DER. */
  x509Authorities: Buffer[]
  jwtAuthorities: JwtAuthority[]
  /** `spiffe_sequence`: increases on every change. */
  sequence: number
  /** `spiffe_refresh_hint`, seconds. */
  refreshHintSeconds: number
}

/** One deny-list entry. */
export interface Revocation {
  targetType: 'spiffe_id' | 'serial' | 'jti' | 'agent'
  value: string
  reason?: string
  createdAt: Date
  expiresAt?: Date
}
