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
  store: Pick<Store, 'bulkInsert'>
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

  async function drain(): Promise<void> {
    writing = true
    try {
      while (pending.rows.length > 0) {
        const batch = pending
        pending = { rows: [], waiters: [] }
        try {
          for (let i = 0; i < batch.rows.length; i += maxBatch) {
            await deps.store.bulkInsert(
              'issuance',
              columns,
              batch.rows
                .slice(i, i + maxBatch)
                .map((r) => [
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
