import { edgeTypes, type IdentityKind } from '../store/schema.js'
import type { NodeType, Observation } from './observation.js'

/**
 * What one `ingest` call did, per observation: `inserted + changed + unchanged = received`.
 * Re-ingesting the same batch reports only `unchanged`; so does a fact repeated within one batch
 * (its last copy is the one that counts).
 */
export interface IngestResult {
  received: number
  inserted: number
  changed: number
  unchanged: number
}

export interface IngestOptions {
  /** Discovery run per source (from `startRun`), so a full run can later close what it did not see. */
  runs?: Readonly<Record<string, string>>
}

export interface RunSummary {
  id: string
  source: string
  scope: 'full' | 'delta'
  status: 'running' | 'succeeded' | 'failed'
  startedAt: string
  finishedAt?: string
  /** Facts closed because a full run did not see them. */
  closed?: number
  /** What the run's connector counted (seen, new, changed, unchanged, errors), as recorded. */
  counts?: RunCounts
}

/** A discovery run's statistics, recorded with it (discovery_run.stats) when it finishes. */
export interface RunCounts {
  seen?: number
  new?: number
  changed?: number
  unchanged?: number
  errors?: number
}

export interface IdentityFilter {
  kind?: IdentityKind
  source?: string
  owner?: string
  state?: string
  /** Identities with no use since this instant (never used counts as unused). */
  unusedSince?: Date
  /** Identities holding a credential that expires before this instant. */
  expiresBefore?: Date
  /** Case-insensitive substring of the name. */
  q?: string
  /** Answer as of this past instant instead of now. */
  at?: Date
  /** Page size, 1..1000 (default 100). */
  limit?: number
  /** Opaque cursor from the previous page's `nextCursor`. */
  cursor?: string
}

export interface IdentitySummary {
  id: string
  ref: string
  kind: IdentityKind
  name: string
  source: string
  owner: string | null
  createdBy: string | null
  state: string
  createdAt: string | null
  lastUsedAt: string | null
  lastSeenAt: string
  validFrom: string
  validTo: string | null
  attributes: Record<string, unknown>
}

export interface Page<T> {
  items: T[]
  /** Present when there may be more; pass it back as `cursor`. */
  nextCursor?: string
}

export interface CredentialView {
  id: string
  ref: string
  credentialType: string
  fingerprint: string | null
  preview: string | null
  issuer: string | null
  createdAt: string | null
  expiresAt: string | null
  lastRotatedAt: string | null
  lastUsedAt: string | null
  state: string
  source: string
  locations: LocationView[]
}

export interface LocationView {
  id: string
  locationType: string
  repository: string | null
  file: string | null
  line: number | null
  commit: string | null
  host: string | null
  path: string | null
  source: string
}

export interface OwnerView {
  id: string
  ref: string
  ownerType: 'person' | 'team'
  name: string
  email: string | null
  status: string
  team: string | null
}

export interface GrantView {
  id: string
  resource: string
  resourceName: string | null
  actions: string[]
  via: string | null
  source: string
}

export interface UsageView {
  resource: string
  action: string
  /** Sum of counts over the window. */
  count: number
  firstHour: string
  lastHour: string
}

/**
 * The link types of the graph: every stored edge type, plus `has_grant` (identity → resource), the
 * link a grant implies. `has_grant` is not an observable edge type: a grant is observed as a grant.
 */
export const linkTypes = [...edgeTypes, 'has_grant'] as const
export type LinkType = (typeof linkTypes)[number]

export interface EdgeView {
  id: string
  edgeType: LinkType
  from: { type: NodeType; id: string; ref: string }
  to: { type: NodeType; id: string; ref: string }
  source: string
}

export interface IdentityDetail extends IdentitySummary {
  ownerDetail: OwnerView | null
  credentials: CredentialView[]
  grants: GrantView[]
  usage: UsageView[]
  edges: EdgeView[]
}

export interface GraphNode {
  id: string
  type: NodeType
  ref: string
  label: string
  /** Distance in edges from the start node. */
  depth: number
  attributes: Record<string, unknown>
}

export interface Graph {
  root: string
  nodes: GraphNode[]
  edges: EdgeView[]
  /** True when `limit` cut the walk short. */
  truncated: boolean
}

export interface NeighbourhoodOptions {
  /** 1..6, default 2 */
  depth?: number
  at?: Date
  edgeTypes?: LinkType[]
  /** Node cap, default 500 */
  limit?: number
}

/** The inventory as the server, CLI and other domains use it. */
export interface Inventory {
  ingest(observations: readonly Observation[], options?: IngestOptions): Promise<IngestResult>
  startRun(source: string, scope: 'full' | 'delta'): Promise<RunSummary>
  /** Ends a run; a successful full run closes (valid_to) the source's facts it did not see. */
  finishRun(
    runId: string,
    outcome?: 'succeeded' | 'failed',
    counts?: RunCounts,
  ): Promise<RunSummary>
  listIdentities(filter?: IdentityFilter): Promise<Page<IdentitySummary>>
  /** By stable id or by ref; undefined when absent (at that instant). */
  getIdentity(idOrRef: string, at?: Date): Promise<IdentityDetail | undefined>
  /** Walk from a node (identity, credential, owner, resource id or ref) over edges, grants and credentials. */
  neighbourhood(idOrRef: string, options?: NeighbourhoodOptions): Promise<Graph | undefined>
  /** Every current (or as-of `at`) fact as observations, in a stable order, streamed. */
  exportObservations(options?: { at?: Date }): AsyncIterable<Observation>
  /** Counts of current facts per table, for status pages and metrics. */
  stats(): Promise<Record<string, number>>
}
