import { sql } from 'kysely'
import type { Store } from '../store/store.js'

/** One issued SVID as recorded in `issuance`. */
export interface IssuanceRecord {
  svidType: 'x509' | 'jwt'
  serial?: string
  jti?: string
  spiffeId: string
  entryId?: string
  agentId?: string
  notBefore: Date
  notAfter: Date
  publicKeyHash?: string
  issuedAt: Date
}

/**
 * Writes issuance records in batches. Every caller's records are written before its `record`
 * resolves (the CA returns SVIDs only after that, so a crash cannot lose a record of an SVID that
 * was handed out); records from calls that arrive while a write is running go together in the next
 * multi-row insert.
 */
export interface IssuanceLog {
  record(records: readonly IssuanceRecord[]): Promise<void>
}

const columns = [
  'svid_type',
  'serial',
  'jti',
  'spiffe_id',
  'entry_id',
  'agent_id',
  'not_before',
  'not_after',
  'public_key_hash',
  'issued_at',
] as const

export function createIssuanceLog(deps: {
  store: Pick<Store, 'bulkInsert'> & Partial<Pick<Store, 'db' | 'backend'>>
  /** Rows per insert at most (default 5,000). */
  maxBatch?: number
}): IssuanceLog {
  const maxBatch = deps.maxBatch ?? 5000
  let pending: {
    rows: IssuanceRecord[]
    waiters: { resolve(): void; reject(e: unknown): void }[]
  } = {
    rows: [],
    waiters: [],
  }
  let writing = false

  async function write(rows: IssuanceRecord[]): Promise<void> {
    const { db, backend } = deps.store
    if (backend === 'pglite' && db !== undefined) {
      // The embedded store runs on this thread: one JSON parameter expanded by json_to_recordset
      // costs a fraction of a multi-row INSERT with ten bind parameters per row (measured).
      const json = JSON.stringify(
        rows.map((r) => ({
          svid_type: r.svidType,
          serial: r.serial ?? null,
          jti: r.jti ?? null,
          spiffe_id: r.spiffeId,
          entry_id: r.entryId ?? null,
          agent_id: r.agentId ?? null,
          not_before: r.notBefore.toISOString(),
          not_after: r.notAfter.toISOString(),
          public_key_hash: r.publicKeyHash ?? null,
          issued_at: r.issuedAt.toISOString(),
        })),
      )
      await sql`insert into issuance (${sql.raw(columns.join(', '))})
        select ${sql.raw(columns.join(', '))} from json_to_recordset(${json}::json) as x(
          svid_type text, serial text, jti text, spiffe_id text, entry_id uuid, agent_id uuid,
          not_before timestamptz, not_after timestamptz, public_key_hash text, issued_at timestamptz)`.execute(
        db,
      )
      return
    }
    await deps.store.bulkInsert(
      'issuance',
      columns,
      rows.map((r) => [
        r.svidType,
        r.serial ?? null,
        r.jti ?? null,
        r.spiffeId,
        r.entryId ?? null,
        r.agentId ?? null,
        r.notBefore,
        r.notAfter,
        r.publicKeyHash ?? null,
        r.issuedAt,
      ]),
    )
  }

  async function drain(): Promise<void> {
    writing = true
    try {
      while (pending.rows.length > 0) {
        const batch = pending
        pending = { rows: [], waiters: [] }
        try {
          for (let i = 0; i < batch.rows.length; i += maxBatch) {
            await write(batch.rows.slice(i, i + maxBatch))
          }
          for (const w of batch.waiters) w.resolve()
        } catch (err) {
          for (const w of batch.waiters) w.reject(err)
        }
      }
    } finally {
      writing = false
    }
  }

  return {
    record(records) {
      if (records.length === 0) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        for (const r of records) pending.rows.push(r)
        pending.waiters.push({ resolve, reject })
        if (!writing) void drain()
      })
    },
  }
}
