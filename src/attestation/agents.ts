import type { Selectable } from 'kysely'
import { TesseraError } from '../errors.js'
import { isUuid } from '../inventory/ids.js'
import type { Selector } from '../spiffe/types.js'
import type { AgentTable } from '../store/schema.js'
import type { Store } from '../store/store.js'

/** An attested node agent as the admin API shows it. */
export interface AgentView {
  id: string
  spiffeId: string
  attestationType: string
  selectors: Selector[]
  /** Serial of the agent's current SVID: the only one the agent API accepts. */
  serial: string | null
  expiresAt: string | null
  banned: boolean
  createdAt: string
  lastSeenAt: string | null
}

export function agentView(row: Selectable<AgentTable>): AgentView {
  return {
    id: row.id,
    spiffeId: row.spiffe_id,
    attestationType: row.attestation_type,
    selectors: parseSelectors(row.selectors),
    serial: row.serial,
    expiresAt: row.expires_at?.toISOString() ?? null,
    banned: row.banned,
    createdAt: row.created_at.toISOString(),
    lastSeenAt: row.last_seen_at?.toISOString() ?? null,
  }
}

export function parseSelectors(value: unknown): Selector[] {
  return (typeof value === 'string' ? JSON.parse(value) : value) as Selector[]
}

export async function listAgents(
  store: Pick<Store, 'db'>,
  filter: { banned?: boolean } = {},
): Promise<AgentView[]> {
  let q = store.db.selectFrom('agent').selectAll()
  if (filter.banned !== undefined) q = q.where('banned', '=', filter.banned)
  const rows = await q.orderBy('spiffe_id').execute()
  return rows.map(agentView)
}

/** By uuid or by SPIFFE ID. */
export async function getAgent(
  store: Pick<Store, 'db'>,
  idOrSpiffeId: string,
): Promise<AgentView | undefined> {
  const row = await store.db
    .selectFrom('agent')
    .selectAll()
    .where(isUuid(idOrSpiffeId) ? 'id' : 'spiffe_id', '=', idOrSpiffeId)
    .executeTakeFirst()
  return row && agentView(row)
}

/**
 * Bans an agent: the agent API refuses it from the next call on (open streams close within a poll),
 * it cannot renew its SVID, and re-attesting as the same agent is refused. Idempotent.
 */
export async function banAgent(store: Pick<Store, 'db'>, idOrSpiffeId: string): Promise<AgentView> {
  const row = await store.db
    .updateTable('agent')
    .set({ banned: true })
    .where(isUuid(idOrSpiffeId) ? 'id' : 'spiffe_id', '=', idOrSpiffeId)
    .returningAll()
    .executeTakeFirst()
  if (!row) throw new TesseraError('TSR_NOT_FOUND', `no agent ${JSON.stringify(idOrSpiffeId)}`)
  return agentView(row)
}
