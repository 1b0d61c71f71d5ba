import { TesseraError } from '../errors.js'
import {
  edgeTypes,
  identityKinds,
  ownerStatuses,
  type BulkValue,
  type FactTable,
} from '../store/index.js'
import { contentHash, edgeRef, entityId, grantRef, locationRef } from './ids.js'
import { nodeTypes, type Observation, type UsageObservation } from './observation.js'

/**
 * Turns observations into table rows: derived ids, normalised values and the content hash that
 * decides whether a fact changed. Pure; the write path is in ingest.ts.
 */

/** Columns every fact table has, in the order `ingest` writes them. */
export const commonColumns = [
  'id',
  'ref',
  'source',
  'valid_from',
  'last_seen_at',
  'run_id',
  'content_hash',
  'attributes',
] as const

/** Descriptive columns per table, in insert order. `last_used_at` is merged at write time. */
export const tableColumns: Record<FactTable, readonly string[]> = {
  identity: ['kind', 'name', 'owner_ref', 'created_by', 'state', 'created_at', 'last_used_at'],
  credential: [
    'identity_id',
    'identity_ref',
    'credential_type',
    'fingerprint',
    'preview',
    'issuer',
    'created_at',
    'expires_at',
    'last_rotated_at',
    'last_used_at',
    'state',
  ],
  credential_location: [
    'credential_id',
    'credential_ref',
    'location_type',
    'repository',
    'file',
    'line',
    'commit',
    'host',
    'path',
  ],
  owner: ['owner_type', 'name', 'email', 'status', 'team_ref'],
  resource: ['resource_type', 'name', 'environment'],
  grant: ['identity_id', 'identity_ref', 'resource_id', 'resource_ref', 'actions', 'via'],
  edge: ['edge_type', 'from_type', 'from_id', 'from_ref', 'to_type', 'to_id', 'to_ref'],
}

/** Tables whose rows carry a `last_used_at` that is updated in place, outside the content hash. */
export const tablesWithLastUsed: ReadonlySet<FactTable> = new Set(['identity', 'credential'])

/** The order facts are written in, so that a batch's references mostly point backwards. */
export const writeOrder: readonly FactTable[] = [
  'owner',
  'resource',
  'identity',
  'credential',
  'credential_location',
  'grant',
  'edge',
]

export interface PreparedFact {
  table: FactTable
  id: string
  ref: string
  source: string
  /** When it was true: the observation's `observedAt`, else the time of ingestion. */
  observedAt: Date
  hash: string
  attributes: Record<string, unknown>
  /** Descriptive column values (keys of `tableColumns[table]`), except `last_used_at`. */
  values: Record<string, BulkValue>
  lastUsedAt: Date | null
}

export interface PreparedUsage {
  key: string
  identityId: string
  identityRef: string
  resource: string
  action: string
  hour: Date
  count: number
  source: string
}

const kinds: ReadonlySet<string> = new Set(identityKinds)
const edges: ReadonlySet<string> = new Set(edgeTypes)
const nodes: ReadonlySet<string> = new Set(nodeTypes)
const statuses: ReadonlySet<string> = new Set(ownerStatuses)
const ownerTypes: ReadonlySet<string> = new Set(['person', 'team'])
const maxInt4 = 2 ** 31 - 1

class Checker {
  readonly index: number

  constructor(index: number) {
    this.index = index
  }

  fail(field: string, problem: string): never {
    throw new TesseraError(
      'TSR_OBSERVATION_INVALID',
      `observation ${this.index}: ${field} ${problem}`,
      { details: { index: this.index, field } },
    )
  }

  text(value: unknown, field: string): string {
    if (typeof value !== 'string' || value.length === 0)
      this.fail(field, 'must be a non-empty string')
    return value
  }

  optionalText(value: unknown, field: string): string | null {
    if (value === undefined || value === null) return null
    if (typeof value !== 'string') this.fail(field, 'must be a string')
    return value
  }

  oneOf(value: unknown, allowed: ReadonlySet<string>, field: string): string {
    if (typeof value !== 'string' || !allowed.has(value)) {
      this.fail(field, `must be one of ${[...allowed].join(', ')}`)
    }
    return value
  }

  date(value: unknown, field: string): Date | null {
    if (value === undefined || value === null) return null
    const d = typeof value === 'string' ? new Date(value) : undefined
    // PostgreSQL's timestamptz ends in 294276 AD; JavaScript's Date reaches further both ways.
    if (
      d === undefined ||
      Number.isNaN(d.getTime()) ||
      d.getUTCFullYear() < 1 ||
      d.getUTCFullYear() > 9999
    ) {
      this.fail(field, 'must be an ISO 8601 date-time')
    }
    return d
  }

  integer(value: unknown, field: string, optional: boolean): number | null {
    if (optional && (value === undefined || value === null)) return null
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > maxInt4) {
      this.fail(field, `must be an integer from 0 to ${maxInt4}`)
    }
    return value
  }

  attributes(value: unknown): Record<string, unknown> {
    if (value === undefined || value === null) return {}
    if (typeof value !== 'object' || Array.isArray(value))
      this.fail('attributes', 'must be an object')
    return value as Record<string, unknown>
  }
}

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString()
}

/**
 * Normalises one observation. Returns a fact, or a usage row for `usage`. Throws
 * TSR_OBSERVATION_INVALID for values the store could not hold.
 */
export function prepareObservation(
  obs: Observation,
  index: number,
  now: Date,
): PreparedFact | PreparedUsage {
  const c: Checker = new Checker(index)
  if (obs === null || typeof obs !== 'object') c.fail('observation', 'must be an object')
  const source = c.text(obs.source, 'source')
  const observedAt = c.date(obs.observedAt, 'observedAt') ?? now
  const attributes = c.attributes(obs.attributes)
  let table: FactTable
  let ref: string
  let values: Record<string, BulkValue>
  let lastUsedAt: Date | null = null
  switch (obs.type) {
    case 'identity':
      table = 'identity'
      ref = c.text(obs.ref, 'ref')
      lastUsedAt = c.date(obs.lastUsedAt, 'lastUsedAt')
      values = {
        kind: c.oneOf(obs.kind, kinds, 'kind'),
        name: c.text(obs.name, 'name'),
        owner_ref: c.optionalText(obs.owner, 'owner'),
        created_by: c.optionalText(obs.createdBy, 'createdBy'),
        state: c.optionalText(obs.state, 'state') ?? 'active',
        created_at: iso(c.date(obs.createdAt, 'createdAt')),
      }
      break
    case 'credential': {
      table = 'credential'
      ref = c.text(obs.ref, 'ref')
      lastUsedAt = c.date(obs.lastUsedAt, 'lastUsedAt')
      const identity = c.optionalText(obs.identity, 'identity')
      values = {
        identity_id: identity === null ? null : entityId('identity', identity),
        identity_ref: identity,
        credential_type: c.text(obs.credentialType, 'credentialType'),
        fingerprint: c.optionalText(obs.fingerprint, 'fingerprint'),
        preview: c.optionalText(obs.preview, 'preview'),
        issuer: c.optionalText(obs.issuer, 'issuer'),
        created_at: iso(c.date(obs.createdAt, 'createdAt')),
        expires_at: iso(c.date(obs.expiresAt, 'expiresAt')),
        last_rotated_at: iso(c.date(obs.lastRotatedAt, 'lastRotatedAt')),
        state: c.optionalText(obs.state, 'state') ?? 'active',
      }
      break
    }
    case 'location': {
      table = 'credential_location'
      const loc = {
        credential: c.text(obs.credential, 'credential'),
        locationType: c.text(obs.locationType, 'locationType') as typeof obs.locationType,
        repository: c.optionalText(obs.repository, 'repository') ?? undefined,
        file: c.optionalText(obs.file, 'file') ?? undefined,
        line: c.integer(obs.line, 'line', true) ?? undefined,
        commit: c.optionalText(obs.commit, 'commit') ?? undefined,
        host: c.optionalText(obs.host, 'host') ?? undefined,
        path: c.optionalText(obs.path, 'path') ?? undefined,
      }
      ref = locationRef(loc)
      values = {
        credential_id: entityId('credential', loc.credential),
        credential_ref: loc.credential,
        location_type: loc.locationType,
        repository: loc.repository ?? null,
        file: loc.file ?? null,
        line: loc.line ?? null,
        commit: loc.commit ?? null,
        host: loc.host ?? null,
        path: loc.path ?? null,
      }
      break
    }
    case 'owner':
      table = 'owner'
      ref = c.text(obs.ref, 'ref')
      values = {
        owner_type: c.oneOf(obs.ownerType, ownerTypes, 'ownerType'),
        name: c.text(obs.name, 'name'),
        email: c.optionalText(obs.email, 'email'),
        status: obs.status === undefined ? 'active' : c.oneOf(obs.status, statuses, 'status'),
        team_ref: c.optionalText(obs.team, 'team'),
      }
      break
    case 'resource':
      table = 'resource'
      ref = c.text(obs.ref, 'ref')
      values = {
        resource_type: c.text(obs.resourceType, 'resourceType'),
        name: c.text(obs.name, 'name'),
        environment: c.optionalText(obs.environment, 'environment'),
      }
      break
    case 'grant': {
      table = 'grant'
      const identity = c.text(obs.identity, 'identity')
      const resource = c.text(obs.resource, 'resource')
      const via = c.optionalText(obs.via, 'via')
      if (
        !Array.isArray(obs.actions) ||
        obs.actions.some((a) => typeof a !== 'string' || a === '')
      ) {
        c.fail('actions', 'must be a list of non-empty strings')
      }
      ref = grantRef(identity, resource, via)
      values = {
        identity_id: entityId('identity', identity),
        identity_ref: identity,
        resource_id: entityId('resource', resource),
        resource_ref: resource,
        // A set: order and repeats carry no meaning, so they must not look like a change.
        actions: [...new Set(obs.actions)].sort(),
        via,
      }
      break
    }
    case 'edge': {
      table = 'edge'
      const edgeType = c.oneOf(obs.edgeType, edges, 'edgeType') as typeof obs.edgeType
      if (obs.from === null || typeof obs.from !== 'object') c.fail('from', 'must be an object')
      if (obs.to === null || typeof obs.to !== 'object') c.fail('to', 'must be an object')
      const from = {
        type: c.oneOf(obs.from.type, nodes, 'from.type') as typeof obs.from.type,
        ref: c.text(obs.from.ref, 'from.ref'),
      }
      const to = {
        type: c.oneOf(obs.to.type, nodes, 'to.type') as typeof obs.to.type,
        ref: c.text(obs.to.ref, 'to.ref'),
      }
      ref = edgeRef(edgeType, from, to)
      values = {
        edge_type: edgeType,
        from_type: from.type,
        from_id: entityId(from.type, from.ref),
        from_ref: from.ref,
        to_type: to.type,
        to_id: entityId(to.type, to.ref),
        to_ref: to.ref,
      }
      break
    }
    case 'usage':
      return prepareUsage(obs, c, source)
    default:
      c.fail('type', 'is not a known observation type')
  }
  const id = entityId(factType(table), ref)
  // Descriptive content only: when it was seen or last used never makes a new version. The columns
  // come in a fixed order per table, so only the free-form attributes need canonical key order.
  const hash = contentHash(
    source,
    tableColumns[table].map((col) => values[col] ?? null),
    attributes,
  )
  return { table, id, ref, source, observedAt, hash, attributes, values, lastUsedAt }
}

function prepareUsage(obs: UsageObservation, c: Checker, source: string): PreparedUsage {
  const identityRef = c.text(obs.identity, 'identity')
  const resource = c.text(obs.resource, 'resource')
  const action = c.text(obs.action, 'action')
  const hour = c.date(obs.hour, 'hour')
  if (hour === null) c.fail('hour', 'is required')
  hour.setUTCMinutes(0, 0, 0)
  const count = c.integer(obs.count, 'count', false)!
  const identityId = entityId('identity', identityRef)
  const key = JSON.stringify([identityId, resource, action, hour.getTime(), source])
  return { key, identityId, identityRef, resource, action, hour, count, source }
}

export function factType(
  table: FactTable,
): 'identity' | 'credential' | 'location' | 'owner' | 'resource' | 'grant' | 'edge' {
  return table === 'credential_location' ? 'location' : table
}

export function isUsage(p: PreparedFact | PreparedUsage): p is PreparedUsage {
  return 'key' in p
}
