import type { EdgeType, IdentityKind, OwnerStatus } from '../store/schema.js'

/**
 * An observation is one normalised fact that a connector (or an import file) saw, with its source.
 * References between facts are `ref` strings: an identity's external reference (ARN, SPIFFE ID,
 * Kubernetes uid…), a credential's key (`aws-key:AKIA…`, `fp:<fingerprint>`), an owner's email or
 * team slug, a resource's ARN or URI. The inventory derives every stable id from (fact type, ref).
 *
 * The JSON Schema in `docs/observation.schema.json` is the contract for import files and
 * `POST /v1/observations`; `parseObservation` enforces it.
 */
export type Observation =
  | IdentityObservation
  | CredentialObservation
  | LocationObservation
  | OwnerObservation
  | ResourceObservation
  | GrantObservation
  | UsageObservation
  | EdgeObservation

interface Base {
  /** Connector instance that saw it, e.g. `aws:prod`, `github:acme`, `scanner`. */
  source: string
  /** When it was true (ISO 8601). Defaults to the time of ingestion. */
  observedAt?: string
  attributes?: Record<string, unknown>
}

export interface IdentityObservation extends Base {
  type: 'identity'
  ref: string
  kind: IdentityKind
  name: string
  /** Owner ref (person email or team slug). */
  owner?: string
  /** Who or what created it: a person, pipeline or parent agent ref. */
  createdBy?: string
  state?: 'active' | 'disabled' | 'deleted' | 'quarantined'
  createdAt?: string
  lastUsedAt?: string
}

export interface CredentialObservation extends Base {
  type: 'credential'
  ref: string
  /** Identity ref this credential authenticates, when known. */
  identity?: string
  credentialType: CredentialType
  /** Keyed hash of the material (never the material). */
  fingerprint?: string
  /** Redacted preview: at most the first and last 4 characters. */
  preview?: string
  issuer?: string
  createdAt?: string
  expiresAt?: string
  lastRotatedAt?: string
  lastUsedAt?: string
  state?: 'active' | 'inactive' | 'revoked' | 'expired'
}

export const credentialTypes = [
  'access_key',
  'api_key',
  'certificate',
  'private_key',
  'ssh_key',
  'password',
  'token',
  'oauth_token',
  'jwt',
  'client_secret',
  'webhook',
  'connection_string',
] as const
export type CredentialType = (typeof credentialTypes)[number]

export const locationTypes = [
  'git',
  'file',
  'k8s_secret',
  'env_var',
  'vault',
  'host',
  'ci_secret',
  'url',
] as const
export type LocationType = (typeof locationTypes)[number]

export interface LocationObservation extends Base {
  type: 'location'
  /** Credential ref it was found for. */
  credential: string
  locationType: LocationType
  repository?: string
  file?: string
  line?: number
  commit?: string
  host?: string
  /** k8s `namespace/name#key`, Vault path, env var name, URL… */
  path?: string
}

export interface OwnerObservation extends Base {
  type: 'owner'
  ref: string
  ownerType: 'person' | 'team'
  name: string
  email?: string
  status?: OwnerStatus
  /** For a person, the team ref they belong to. */
  team?: string
}

export interface ResourceObservation extends Base {
  type: 'resource'
  ref: string
  resourceType: string
  name: string
  environment?: string
}

export interface GrantObservation extends Base {
  type: 'grant'
  identity: string
  /** Resource ref; `*` for every resource. */
  resource: string
  actions: string[]
  /** Policy, role or binding that grants it. */
  via?: string
}

export interface UsageObservation extends Base {
  type: 'usage'
  identity: string
  resource: string
  action: string
  /** Start of the hour (ISO 8601); other instants are truncated to the hour. */
  hour: string
  count: number
}

export const nodeTypes = ['identity', 'credential', 'owner', 'resource', 'location'] as const
export type NodeType = (typeof nodeTypes)[number]

export interface EdgeObservation extends Base {
  type: 'edge'
  edgeType: EdgeType
  from: { type: NodeType; ref: string }
  to: { type: NodeType; ref: string }
}
