import type { IdentityKind } from '../../store/schema.js'
import type { OwnershipStep } from '../../inventory/owners/ownership.js'

/**
 * A parsed, validated `tessera.policy.yaml` (schema: docs/governance-policy.md). Durations are
 * normalised: TTLs to seconds, key ages to days. Every section is optional.
 */
export interface GovernancePolicy {
  version: 1
  ownership?: { order?: OwnershipStep[] }
  /** Per identity kind, the name (and for workloads the SPIFFE ID) must match. */
  naming?: Partial<Record<IdentityKind, NamingRule>>
  /** Per team ref (or `*`), the SPIFFE ID templates its workloads must match. */
  spiffeIds?: Record<string, string[]>
  /** Maximum credential/SVID TTL per kind, seconds. */
  maxTtl?: Partial<Record<IdentityKind, number>>
  /** Maximum static key age per kind, days. */
  maxKeyAge?: Partial<Record<IdentityKind, number>>
  required?: {
    /** Every identity must resolve to an owner that has not departed. */
    owner?: boolean
    /** Tags every identity (`*`) or every identity of a kind must carry. */
    tags?: Partial<Record<IdentityKind | '*', string[]>>
  }
  /** Who may register (entries) or mint (token exchange) which SPIFFE IDs. */
  registration?: RegistrationPolicy
  forbiddenGrants?: string[]
  crownJewels?: string[]
  thresholds?: Record<string, Record<string, number>>
}

export interface NamingRule {
  /** A regular expression (anchored by you). */
  pattern?: string
  /** `{team}-{name}`: placeholders match `[a-z0-9][a-z0-9-]*`; `{team}` must be the owner's team. */
  template?: string
  /** Shown with a violation: what a good name looks like. */
  example?: string
}

export interface RegistrationPolicy {
  /** `deny`: a SPIFFE ID no rule covers is refused; `allow` (default): only covered IDs are checked. */
  default?: 'allow' | 'deny'
  rules: RegistrationRule[]
}

export interface RegistrationRule {
  name: string
  /** SPIFFE ID prefixes this rule covers (`spiffe://acme.example/ns/payments/`). */
  spiffeIdPrefixes: string[]
  /** Entry owners (team refs; a person counts through their teams) allowed to register under them. */
  teams?: string[]
  /** Callers (API token names `api-token:<id>`, CLI users `cli:<user>`), glob `*`. */
  actors?: string[]
  /** Pipelines allowed to obtain tokens for these IDs by token exchange (OIDC subject SPIFFE IDs, glob `*`). */
  pipelines?: string[]
}

/** One problem found in a policy file, where it is. */
export interface PolicyProblem {
  line: number
  column: number
  path: string
  reason: string
}
