import { sql } from 'kysely'
import { TesseraError } from '../errors.js'
import type { Store } from '../store/store.js'

/**
 * "Which identity held SPIFFE ID X at time T, on which node": the `issuance` table read back,
 * joined to the agent that asked for each SVID. Newest first, keyset-paginated by the row id.
 */

export interface IssuanceQuery {
  spiffeId?: string
  /** Only SVIDs valid at this instant (notBefore ≤ at < notAfter). */
  at?: Date
  agentId?: string
  limit?: number
  /** From a previous page's `nextCursor`. */
  cursor?: string
}

export interface IssuanceView {
  id: number
  svidType: 'x509' | 'jwt'
  serial: string | null
  jti: string | null
  spiffeId: string
  entryId: string | null
  agentId: string | null
  /** The SPIFFE ID of the agent (node) the SVID was issued through, if known. */
  agentSpiffeId: string | null
  notBefore: string
  notAfter: string
  issuedAt: string
  publicKeyHash: string | null
}

export interface IssuancePage {
  items: IssuanceView[]
  nextCursor: string | null
}

const maxLimit = 1000
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export async function listIssuance(
  store: Pick<Store, 'db'>,
  query: IssuanceQuery = {},
): Promise<IssuancePage> {
  const limit = query.limit ?? 100
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) {
    throw new TesseraError('TSR_VALIDATION', `limit must be 1 to ${maxLimit}`)
  }
  if (query.agentId !== undefined && !uuidPattern.test(query.agentId)) {
    throw new TesseraError('TSR_VALIDATION', 'agentId must be a UUID')
  }
  if (query.spiffeId !== undefined && (query.spiffeId === '' || query.spiffeId.length > 2048)) {
    throw new TesseraError('TSR_VALIDATION', 'spiffeId must be 1 to 2048 characters')
  }
  if (query.at !== undefined && Number.isNaN(query.at.getTime())) {
    throw new TesseraError('TSR_VALIDATION', 'at is not a valid instant')
  }
  let before: number | undefined
  if (query.cursor !== undefined) {
    if (!/^[1-9][0-9]{0,15}$/.test(query.cursor)) {
      throw new TesseraError('TSR_VALIDATION', 'cursor is not one this server gave out')
    }
    before = Number(query.cursor)
  }
  let q = store.db
    .selectFrom('issuance as i')
    .leftJoin('agent as a', 'a.id', 'i.agent_id')
    .select([
      'i.id',
      'i.svid_type',
      'i.serial',
      'i.jti',
      'i.spiffe_id',
      'i.entry_id',
      'i.agent_id',
      'a.spiffe_id as agent_spiffe_id',
      'i.not_before',
      'i.not_after',
      'i.issued_at',
      'i.public_key_hash',
    ])
    .orderBy('i.id', 'desc')
    .limit(limit + 1)
  if (query.spiffeId !== undefined) q = q.where('i.spiffe_id', '=', query.spiffeId)
  if (query.agentId !== undefined) q = q.where('i.agent_id', '=', query.agentId.toLowerCase())
  if (before !== undefined) q = q.where('i.id', '<', before)
  if (query.at !== undefined) {
    const at = query.at.toISOString()
    q = q
      .where(sql<boolean>`i.not_before <= ${at}::timestamptz`)
      .where(sql<boolean>`i.not_after > ${at}::timestamptz`)
  }
  const rows = await q.execute()
  const page = rows.slice(0, limit)
  const items: IssuanceView[] = page.map((r) => ({
    id: Number(r.id),
    svidType: r.svid_type as 'x509' | 'jwt',
    serial: r.serial,
    jti: r.jti,
    spiffeId: r.spiffe_id,
    entryId: r.entry_id,
    agentId: r.agent_id,
    agentSpiffeId: r.agent_spiffe_id ?? null,
    notBefore: new Date(r.not_before).toISOString(),
    notAfter: new Date(r.not_after).toISOString(),
    issuedAt: new Date(r.issued_at).toISOString(),
    publicKeyHash: r.public_key_hash,
  }))
  return {
    items,
    nextCursor: rows.length > limit ? String(items[items.length - 1]!.id) : null,
  }
}
