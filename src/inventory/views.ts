import { sql, type RawBuilder } from 'kysely'
import type {
  CredentialLocationRow,
  CredentialRow,
  EdgeRow,
  IdentityRow,
  OwnerRow,
} from '../store/index.js'
import type {
  CredentialView,
  EdgeView,
  IdentitySummary,
  LocationView,
  OwnerView,
} from './inventory-types.js'
import type { NodeType } from './observation.js'

/** Rows to API views, and the as-of condition every query shares. */

/**
 * The versions valid at `at`, or the current ones when `at` is absent (which the partial
 * `valid_to IS NULL` indexes serve).
 */
export function validAt(alias: string, at: Date | undefined): RawBuilder<unknown> {
  const to = sql.ref(`${alias}.valid_to`)
  if (at === undefined) return sql`${to} is null`
  const t = at.toISOString()
  return sql`(${sql.ref(`${alias}.valid_from`)} <= ${t}::timestamptz and (${to} is null or ${to} > ${t}::timestamptz))`
}

export function iso(value: Date | string | null | undefined): string | null {
  if (value === null || value === undefined) return null
  return new Date(value).toISOString()
}

function isoRequired(value: Date | string): string {
  return new Date(value).toISOString()
}

function json(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') return JSON.parse(value) as Record<string, unknown>
  return (value ?? {}) as Record<string, unknown>
}

export function identitySummary(r: IdentityRow): IdentitySummary {
  return {
    id: r.id,
    ref: r.ref,
    kind: r.kind,
    name: r.name,
    source: r.source,
    owner: r.owner_ref,
    createdBy: r.created_by,
    state: r.state,
    createdAt: iso(r.created_at),
    lastUsedAt: iso(r.last_used_at),
    lastSeenAt: isoRequired(r.last_seen_at),
    validFrom: isoRequired(r.valid_from),
    validTo: iso(r.valid_to),
    attributes: json(r.attributes),
  }
}

export function credentialView(r: CredentialRow, locations: LocationView[]): CredentialView {
  return {
    id: r.id,
    ref: r.ref,
    credentialType: r.credential_type,
    fingerprint: r.fingerprint,
    preview: r.preview,
    issuer: r.issuer,
    createdAt: iso(r.created_at),
    expiresAt: iso(r.expires_at),
    lastRotatedAt: iso(r.last_rotated_at),
    lastUsedAt: iso(r.last_used_at),
    state: r.state,
    source: r.source,
    locations,
  }
}

export function locationView(r: CredentialLocationRow): LocationView {
  return {
    id: r.id,
    locationType: r.location_type,
    repository: r.repository,
    file: r.file,
    line: r.line,
    commit: r.commit,
    host: r.host,
    path: r.path,
    source: r.source,
  }
}

export function ownerView(r: OwnerRow): OwnerView {
  return {
    id: r.id,
    ref: r.ref,
    ownerType: r.owner_type,
    name: r.name,
    email: r.email,
    status: r.status,
    team: r.team_ref,
  }
}

export function edgeView(r: EdgeRow): EdgeView {
  return {
    id: r.id,
    edgeType: r.edge_type,
    from: { type: r.from_type as NodeType, id: r.from_id, ref: r.from_ref },
    to: { type: r.to_type as NodeType, id: r.to_id, ref: r.to_ref },
    source: r.source,
  }
}
