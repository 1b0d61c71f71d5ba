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

  /** The few distinct times of a batch (issued_at, not_before, not_after) are formatted once. */
  const isoCache = new Map<number, string>()
  function iso(d: Date): string {
    const t = d.getTime()
    let text = isoCache.get(t)
    if (text === undefined) {
      if (isoCache.size >= 256) isoCache.clear()
      text = d.toISOString()
      isoCache.set(t, text)
    }
    return text
  }

  async function write(rows: IssuanceRecord[]): Promise<void> {
    const { db, backend } = deps.store
    if (db !== undefined && (backend === 'pglite' || backend === 'postgres')) {
      // One JSON parameter expanded by json_to_recordset, one statement per batch: on the
      // embedded store (same thread) it costs a fraction of a multi-row INSERT with ten bind
      // parameters per row, and on PostgreSQL it costs this process one native JSON.stringify
      // instead of a COPY text encoding per value (both measured in bench/issuance.ts).
      const json = JSON.stringify(
        rows.map((r) => ({
          svid_type: r.svidType,
          serial: r.serial ?? null,
          jti: r.jti ?? null,
          spiffe_id: r.spiffeId,
          entry_id: r.entryId ?? null,
          agent_id: r.agentId ?? null,
          not_before: iso(r.notBefore),
          not_after: iso(r.notAfter),
          public_key_hash: r.publicKeyHash ?? null,
          issued_at: iso(r.issuedAt),
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
