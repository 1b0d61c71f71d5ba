import { sql, type Kysely, type Selectable } from 'kysely'
import { TesseraError } from '../../errors.js'
import type { Database, DynamicLeaseState, DynamicLeaseTable } from '../../store/schema.js'

/** A lease as the API and CLI show it: never a password, only its fingerprint. */
export interface LeaseView {
  id: string
  backend: string
  backendType: string
  template: string
  username: string
  spiffeId: string
  state: DynamicLeaseState
  fingerprint: string | null
  createdAt: string
  expiresAt: string
  activatedAt: string | null
  firstUsedAt: string | null
  lastUsedAt: string | null
  revokeRequestedAt: string | null
  revokeReason: string | null
  revokedAt: string | null
  lastError: string | null
  createdBy: string | null
}

export interface LeaseFilter {
  state?: DynamicLeaseState
  spiffeId?: string
  backend?: string
  /** 1..1000, default 100; newest first. */
  limit?: number
}

export type LeaseRow = Selectable<DynamicLeaseTable>

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())

export function leaseView(row: LeaseRow): LeaseView {
  return {
    id: row.id,
    backend: row.backend,
    backendType: row.backend_type,
    template: row.template,
    username: row.username,
    spiffeId: row.spiffe_id,
    state: row.state,
    fingerprint: row.fingerprint,
    createdAt: iso(row.created_at)!,
    expiresAt: iso(row.expires_at)!,
    activatedAt: iso(row.activated_at),
    firstUsedAt: iso(row.first_used_at),
    lastUsedAt: iso(row.last_used_at),
    revokeRequestedAt: iso(row.revoke_requested_at),
    revokeReason: row.revoke_reason,
    revokedAt: iso(row.revoked_at),
    lastError: row.last_error,
    createdBy: row.created_by,
  }
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Checks a lease id (a uuid); throws TSR_VALIDATION. */
export function parseLeaseId(id: string): string {
  const v = id.trim().toLowerCase()
  if (!uuidPattern.test(v)) throw new TesseraError('TSR_VALIDATION', `"${id}" is not a lease id`)
  return v
}

export async function listLeases(db: Kysely<Database>, filter: LeaseFilter = {}) {
  const limit = filter.limit ?? 100
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
    throw new TesseraError('TSR_VALIDATION', 'limit must be 1 to 1000')
  }
  let q = db
    .selectFrom('dynamic_lease')
    .selectAll()
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .limit(limit)
  if (filter.state) q = q.where('state', '=', filter.state)
  if (filter.spiffeId) q = q.where('spiffe_id', '=', filter.spiffeId)
  if (filter.backend) q = q.where('backend', '=', filter.backend)
  return (await q.execute()).map(leaseView)
}

export async function getLease(db: Kysely<Database>, id: string): Promise<LeaseRow> {
  const row = await db
    .selectFrom('dynamic_lease')
    .selectAll()
    .where('id', '=', parseLeaseId(id))
    .executeTakeFirst()
  if (!row) throw new TesseraError('TSR_NOT_FOUND', `no lease ${id}`)
  return row
}

/**
 * Asks for a lease's revocation without touching the backend: the servers' reapers carry it out
 * within their interval. What a CLI on a local store does (it holds no backend credentials).
 */
export async function requestLeaseRevocation(
  db: Kysely<Database>,
  id: string,
  now: Date,
  reason: string,
): Promise<LeaseView> {
  const row = await db
    .updateTable('dynamic_lease')
    .set({
      revoke_requested_at: sql`coalesce(revoke_requested_at, ${now.toISOString()}::timestamptz)`,
      revoke_reason: sql`coalesce(revoke_reason, ${reason})`,
    })
    .where('id', '=', parseLeaseId(id))
    .returningAll()
    .executeTakeFirst()
  if (!row) throw new TesseraError('TSR_NOT_FOUND', `no lease ${id}`)
  return leaseView(row)
}
