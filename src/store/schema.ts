import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

/** Kysely's view of the tables created by `migrations/`. Keep the two in step. */

type Timestamp = ColumnType<Date, Date | string, Date | string>
type OptionalTimestamp = ColumnType<
  Date | null,
  Date | string | null | undefined,
  Date | string | null
>
type DefaultTimestamp = ColumnType<Date, Date | string | undefined, Date | string>
type Json<T = Record<string, unknown>> = ColumnType<T, T | string | undefined, T | string>

/** Columns every versioned fact table shares. */
export interface FactColumns {
  version_id: Generated<number>
  id: string
  ref: string
  source: string
  valid_from: Timestamp
  /** null while this version is the current one */
  valid_to: OptionalTimestamp
  recorded_at: DefaultTimestamp
  last_seen_at: Timestamp
  run_id: string | null
  content_hash: string
  attributes: Json
}

export const identityKinds = [
  'workload',
  'service_account',
  'iam_user',
  'iam_role',
  'api_client',
  'oauth_app',
  'ci_pipeline',
  'ai_agent',
  'bot',
  'ssh_principal',
] as const
export type IdentityKind = (typeof identityKinds)[number]

export const edgeTypes = [
  'owns',
  'created',
  'uses_credential',
  'credential_found_in',
  'can_assume',
  'runs_as',
  'delegated_to',
  'depends_on',
] as const
export type EdgeType = (typeof edgeTypes)[number]

export const ownerStatuses = ['active', 'departed', 'suspended'] as const
export type OwnerStatus = (typeof ownerStatuses)[number]

export interface IdentityTable extends FactColumns {
  kind: IdentityKind
  name: string
  owner_ref: string | null
  created_by: string | null
  state: string
  created_at: OptionalTimestamp
  last_used_at: OptionalTimestamp
  /** Earliest expiry among the current credentials (migration 0014); kept on the open version. */
  next_expires_at: OptionalTimestamp
}

export interface CredentialTable extends FactColumns {
  identity_id: string | null
  identity_ref: string | null
  credential_type: string
  fingerprint: string | null
  preview: string | null
  issuer: string | null
  created_at: OptionalTimestamp
  expires_at: OptionalTimestamp
  last_rotated_at: OptionalTimestamp
  last_used_at: OptionalTimestamp
  state: string
}

export interface CredentialLocationTable extends FactColumns {
  credential_id: string
  credential_ref: string
  location_type: string
  repository: string | null
  file: string | null
  line: number | null
  commit: string | null
  host: string | null
  path: string | null
}

export interface OwnerTable extends FactColumns {
  owner_type: 'person' | 'team'
  name: string
  email: string | null
  status: OwnerStatus
  team_ref: string | null
}

export interface ResourceTable extends FactColumns {
  resource_type: string
  name: string
  environment: string | null
}

export interface GrantTable extends FactColumns {
  identity_id: string
  identity_ref: string
  resource_id: string
  resource_ref: string
  actions: string[]
  via: string | null
}

export interface EdgeTable extends FactColumns {
  edge_type: EdgeType
  from_type: string
  from_id: string
  from_ref: string
  to_type: string
  to_id: string
  to_ref: string
}

export interface UsageTable {
  id: Generated<number>
  identity_id: string
  identity_ref: string
  resource_ref: string
  action: string
  hour: Timestamp
  count: number
  source: string
  recorded_at: DefaultTimestamp
}

export interface SettingTable {
  key: string
  value: Json<unknown>
  updated_at: DefaultTimestamp
}

export const tokenScopes = ['read', 'write', 'admin', 'authz', 'scim'] as const
export type TokenScope = (typeof tokenScopes)[number]

export interface ApiTokenTable {
  id: string
  name: string
  token_hash: string
  scopes: TokenScope[]
  created_at: DefaultTimestamp
  expires_at: OptionalTimestamp
  last_used_at: OptionalTimestamp
  revoked_at: OptionalTimestamp
}

export interface DiscoveryRunTable {
  id: string
  source: string
  scope: 'full' | 'delta'
  status: 'running' | 'succeeded' | 'failed'
  started_at: Timestamp
  finished_at: OptionalTimestamp
  stats: Json
}

export interface RegistrationEntryTable {
  version_id: Generated<number>
  id: string
  revision: Generated<number>
  spiffe_id: string
  parent_id: string
  selectors: Json<Array<{ type: string; value: string }>>
  x509_svid_ttl: number | null
  jwt_svid_ttl: number | null
  dns_names: ColumnType<string[], string[] | undefined, string[]>
  federates_with: ColumnType<string[], string[] | undefined, string[]>
  hint: string | null
  admin: Generated<boolean>
  downstream: Generated<boolean>
  owner_ref: string
  expires_at: OptionalTimestamp
  created_by: string | null
  valid_from: DefaultTimestamp
  valid_to: OptionalTimestamp
  deleted: Generated<boolean>
}

export interface AgentTable {
  id: string
  spiffe_id: string
  attestation_type: string
  selectors: Json<Array<{ type: string; value: string }>>
  serial: string | null
  expires_at: OptionalTimestamp
  banned: Generated<boolean>
  created_at: DefaultTimestamp
  last_seen_at: OptionalTimestamp
}

export interface JoinTokenTable {
  token_hash: string
  expires_at: Timestamp
  used_at: OptionalTimestamp
  used_by_agent: string | null
  created_at: DefaultTimestamp
  created_by: string | null
}

export interface CaKeyTable {
  id: string
  purpose: 'x509_ca' | 'jwt'
  slot: 'prepared' | 'active' | 'old'
  algorithm: string
  public_key_pem: string
  encrypted_private_key: Uint8Array
  wrapped_data_key: Uint8Array
  kek_id: string
  certificate_pem: string | null
  not_before: OptionalTimestamp
  not_after: OptionalTimestamp
  tainted: Generated<boolean>
  revoked: Generated<boolean>
  created_at: DefaultTimestamp
}

export interface IssuanceTable {
  id: Generated<number>
  svid_type: 'x509' | 'jwt'
  serial: string | null
  jti: string | null
  spiffe_id: string
  entry_id: string | null
  agent_id: string | null
  not_before: Timestamp
  not_after: Timestamp
  public_key_hash: string | null
  issued_at: DefaultTimestamp
}

export interface RevocationTable {
  id: Generated<number>
  target_type: 'spiffe_id' | 'serial' | 'jti' | 'agent'
  value: string
  reason: string | null
  created_at: DefaultTimestamp
  expires_at: OptionalTimestamp
  created_by: string | null
}

export interface EventTable {
  seq: number
  at: Timestamp
  event_type: string
  actor: string | null
  subject: string | null
  resource: string | null
  action: string | null
  decision: string | null
  request_id: string | null
  data: Json
  prev_hash: string
  hash: string
}

export interface EventChainHeadTable {
  id: number
  seq: number
  hash: string
  updated_at: DefaultTimestamp
}

export const severities = ['info', 'low', 'medium', 'high', 'critical'] as const
export type Severity = (typeof severities)[number]

export interface FindingTable {
  id: string
  dedup_key: string
  rule: string
  severity: Severity
  subject_type: string
  subject_id: string | null
  subject_ref: string
  evidence: Json
  owner_ref: string | null
  status: 'open' | 'accepted' | 'resolved'
  accepted_reason: string | null
  accepted_until: OptionalTimestamp
  first_seen_at: Timestamp
  last_seen_at: Timestamp
  resolved_at: OptionalTimestamp
  /** Migration 0011: the report that last saw it, and the identity it is about (risk scores). */
  last_report: ColumnType<string | null, string | null | undefined, string | null>
  identity_id: ColumnType<string | null, string | null | undefined, string | null>
}

export interface PolicyTable {
  id: Generated<number>
  policy_type: 'governance' | 'cedar'
  name: string
  version: number
  body: string
  created_at: DefaultTimestamp
  created_by: string | null
  active: Generated<boolean>
}

export interface FederationRelationshipTable {
  trust_domain: string
  bundle_endpoint_url: string
  profile: 'https_web' | 'https_spiffe'
  endpoint_spiffe_id: string | null
  created_at: DefaultTimestamp
  created_by: string | null
  next_poll_at: DefaultTimestamp
  last_polled_at: OptionalTimestamp
  last_success_at: OptionalTimestamp
  last_error: string | null
  consecutive_failures: Generated<number>
}

export interface FederatedBundleTable {
  version_id: Generated<number>
  trust_domain: string
  sequence: number
  bundle: unknown
  refresh_hint_seconds: number | null
  source: 'endpoint' | 'operator'
  fetched_at: Date | string
  valid_to: OptionalTimestamp
}

/** Anomaly detection baselines (migration 0009): one per identity and one per peer group. */
export interface DetectionBaselineTable {
  key: string
  scope: 'identity' | 'peer'
  events: number | string
  state: Json<unknown>
  first_seen_at: Timestamp
  updated_at: Timestamp
}

/** Migration 0011: one row per identity with open findings, rewritten by each posture run. */
export interface RiskScoreTable {
  identity_id: string
  identity_ref: string
  owner_ref: string | null
  score: number
  findings: number
  max_severity: Severity
  blast_radius: number
  computed_at: Timestamp
}

export interface OffboardingPlanTable {
  id: string
  subject_type: 'person' | 'team' | 'service'
  subject_ref: string
  status: 'planned' | 'executing' | 'done' | 'failed'
  reassign_to: string | null
  summary: Json
  created_at: Timestamp
  created_by: string | null
  updated_at: Timestamp
  finished_at: OptionalTimestamp
}

export interface OffboardingStepTable {
  plan_id: string
  seq: number
  action: 'reassign' | 'rotate' | 'revoke' | 'disable'
  target_type: 'identity' | 'credential'
  target_id: string
  target_ref: string
  reason: string
  params: Json
  status: 'pending' | 'running' | 'done' | 'failed'
  attempts: Generated<number>
  audited: Generated<boolean>
  result: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>
  error: string | null
  started_at: OptionalTimestamp
  finished_at: OptionalTimestamp
}

/** Explicit ownership (migration 0010): one open version per identity. */
export interface OwnerAssignmentTable {
  version_id: Generated<number>
  identity_id: string
  identity_ref: string
  owner_ref: string
  reason: string | null
  assigned_by: string | null
  valid_from: Timestamp
  valid_to: OptionalTimestamp
}

/** A repository's CODEOWNERS content, stored for ownership resolution (migration 0010). */
export interface CodeownersFileTable {
  repository: string
  content: string
  updated_at: Timestamp
}

export type DynamicLeaseState = 'pending' | 'active' | 'revoked'

/** A just-in-time credential's lease (migration 0013); never the password, only its fingerprint. */
export interface DynamicLeaseTable {
  id: string
  backend: string
  backend_type: string
  template: string
  username: string
  spiffe_id: string
  state: DynamicLeaseState
  fingerprint: string | null
  created_at: Timestamp
  expires_at: Timestamp
  activated_at: OptionalTimestamp
  first_used_at: OptionalTimestamp
  last_used_at: OptionalTimestamp
  revoke_requested_at: OptionalTimestamp
  revoke_reason: string | null
  revoked_at: OptionalTimestamp
  revoke_attempts: Generated<number>
  last_error: string | null
  created_by: string | null
}

export interface Database {
  setting: SettingTable
  api_token: ApiTokenTable
  discovery_run: DiscoveryRunTable
  identity: IdentityTable
  credential: CredentialTable
  credential_location: CredentialLocationTable
  owner: OwnerTable
  resource: ResourceTable
  grant: GrantTable
  edge: EdgeTable
  usage: UsageTable
  registration_entry: RegistrationEntryTable
  agent: AgentTable
  join_token: JoinTokenTable
  ca_key: CaKeyTable
  issuance: IssuanceTable
  revocation: RevocationTable
  event: EventTable
  finding: FindingTable
  policy: PolicyTable
  federation_relationship: FederationRelationshipTable
  federated_bundle: FederatedBundleTable
  detection_baseline: DetectionBaselineTable
  risk_score: RiskScoreTable
  offboarding_plan: OffboardingPlanTable
  offboarding_step: OffboardingStepTable
  event_chain_head: EventChainHeadTable
  owner_assignment: OwnerAssignmentTable
  codeowners_file: CodeownersFileTable
  managed_secret: ManagedSecretTable
  secret_rotation: SecretRotationTable
  secret_rotation_step: SecretRotationStepTable
  dynamic_lease: DynamicLeaseTable
}

/** A managed secret (migration 0012): values sealed under the KEK, never in the clear. */
export interface ManagedSecretTable {
  name: string
  rotator: string
  config_public: Json
  config_sealed: Buffer
  consumers: ColumnType<string[], string[] | undefined, string[]>
  period_seconds: number
  rotation_window: string | null
  grace_seconds: number
  kek_id: string
  version: Generated<number>
  value_sealed: Buffer | null
  value_meta: Json
  fingerprint: string | null
  previous_sealed: Buffer | null
  previous_meta: ColumnType<
    Record<string, unknown> | null,
    string | null | undefined,
    string | null
  >
  previous_fingerprint: string | null
  previous_valid_until: OptionalTimestamp
  credential_ref: string
  identity_ref: string | null
  created_at: Timestamp
  created_by: string | null
  last_rotated_at: OptionalTimestamp
  next_rotation_at: Timestamp
  last_error: string | null
  consecutive_failures: Generated<number>
}

export type RotationState =
  'pending' | 'created' | 'verified' | 'activated' | 'grace' | 'revoked' | 'done' | 'failed'

export interface SecretRotationTable {
  id: string
  secret_name: string
  state: RotationState
  reason: string
  requested_by: string | null
  from_version: number
  new_sealed: Buffer | null
  new_meta: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>
  new_fingerprint: string | null
  grace_until: OptionalTimestamp
  attempts: Generated<number>
  next_attempt_at: OptionalTimestamp
  error: string | null
  started_at: Timestamp
  updated_at: Timestamp
  finished_at: OptionalTimestamp
}

export interface SecretRotationStepTable {
  seq: Generated<number>
  rotation_id: string
  state: string
  at: Timestamp
  detail: Json
}

/** The versioned fact tables, the ones observations write to. */
export const factTables = [
  'identity',
  'credential',
  'credential_location',
  'owner',
  'resource',
  'grant',
  'edge',
] as const
export type FactTable = (typeof factTables)[number]

export type IdentityRow = Selectable<IdentityTable>
export type CredentialRow = Selectable<CredentialTable>
export type CredentialLocationRow = Selectable<CredentialLocationTable>
export type OwnerRow = Selectable<OwnerTable>
export type ResourceRow = Selectable<ResourceTable>
export type GrantRow = Selectable<GrantTable>
export type EdgeRow = Selectable<EdgeTable>
export type UsageRow = Selectable<UsageTable>
export type ApiTokenRow = Selectable<ApiTokenTable>
export type NewApiToken = Insertable<ApiTokenTable>
