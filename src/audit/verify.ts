import { sql, type Kysely } from 'kysely'
import type { Database } from '../store/schema.js'
import {
  chainHash,
  genesisHash,
  preparedFromStored,
  rowToEvent,
  type ChainedEvent,
  type EventRow,
} from './chain.js'

/** What broke the chain at one place. */
export type ChainIssueKind =
  /** The row's content no longer matches its hash: a field was changed. */
  | 'edited'
  /** Seqs are missing between two rows, or at the end of the chain: events were removed. */
  | 'missing'
  /** The row is sealed for another place in the chain: rows were moved or swapped. */
  | 'reordered'
  /** The row's hash and link were both recomputed, yet it does not link to its predecessor. */
  | 'relinked'
  /** Two rows carry the same seq. */
  | 'duplicate'

export interface ChainIssue {
  kind: ChainIssueKind
  /** Where: the seq of the row (or the first missing seq). */
  seq: number
  /** The row's time, when there is a row. */
  at?: string
  message: string
}

export interface ChainVerification {
  ok: boolean
  /** Rows checked. */
  checked: number
  /** The last row's seq and hash (what an external anchor should record). */
  last?: { seq: number; hash: string }
  /** What the chain head row says. */
  head?: { seq: number; hash: string }
  issues: ChainIssue[]
}

export interface VerifyOptions {
  /** Rows read per query (default 5,000). */
  pageSize?: number
  /** Stop collecting after this many issues (default 100). */
  maxIssues?: number
  /** Called after each page, for progress bars. */
  onProgress?: (checked: number, lastSeq: number) => void
}

/**
 * Walks the whole chain in seq order and reports every place where it does not hold, saying what:
 * an edited row (its hash no longer matches its content), missing rows (a gap in seq, or a chain
 * head ahead of the last row), a reordered row (it carries a predecessor link or hash sealed for
 * another position) or a relinked row.
 */
export async function verifyChain(
  db: Kysely<Database>,
  options: VerifyOptions = {},
): Promise<ChainVerification> {
  const pageSize = options.pageSize ?? 5000
  const maxIssues = options.maxIssues ?? 100
  const issues: ChainIssue[] = []
  const report = (issue: ChainIssue) => {
    if (issues.length < maxIssues) issues.push(issue)
  }
  let checked = 0
  let prevSeq = 0
  let prevHash = genesisHash
  let after = -1
  let last: ChainedEvent | undefined
  // Hashes of recent rows: a row linking to one of them that sits elsewhere was moved, and the
  // move is reported at the moved row already.
  const recent = new Set<string>()
  const where = (e: ChainedEvent) => ({ seq: e.seq, at: e.at.toISOString() })
  for (;;) {
    const rows = await sql<EventRow>`select * from event where seq > ${after}
      order by seq, hash limit ${pageSize}`.execute(db)
    if (rows.rows.length === 0) break
    for (const row of rows.rows) {
      const e = rowToEvent(row)
      checked++
      if (last !== undefined && e.seq === last.seq) {
        report({
          kind: 'duplicate',
          ...where(e),
          message: `two rows carry seq ${e.seq}`,
        })
        continue
      }
      if (e.seq > prevSeq + 1) {
        const first = prevSeq + 1
        const lastMissing = e.seq - 1
        report({
          kind: 'missing',
          seq: first,
          message:
            first === lastMissing
              ? `seq ${first} is missing (removed) before seq ${e.seq} at ${e.at.toISOString()}`
              : `seq ${first}..${lastMissing} are missing (removed) before seq ${e.seq} at ${e.at.toISOString()}`,
        })
      }
      const prepared = preparedFromStored(e)
      const contentOk = chainHash(e.prevHash, e.seq, prepared) === e.hash
      const linkOk = e.prevHash === prevHash
      if (!contentOk) {
        const moved = await sealedElsewhere(db, e, prepared)
        if (moved !== undefined) {
          report({
            kind: 'reordered',
            ...where(e),
            message: `seq ${e.seq} holds the event sealed as seq ${moved}: rows were moved or swapped`,
          })
        } else {
          report({
            kind: 'edited',
            ...where(e),
            message: `seq ${e.seq} (${e.type}) does not match its hash: its time, type, actor, subject, resource, action, decision, request id or data was changed after sealing`,
          })
        }
      } else if (!linkOk && e.seq === prevSeq + 1 && !recent.has(e.prevHash)) {
        report({
          kind: 'relinked',
          ...where(e),
          message: `seq ${e.seq} does not link to seq ${prevSeq}: seq ${prevSeq} was rewritten, or this row was re-sealed`,
        })
      }
      prevSeq = e.seq
      prevHash = e.hash
      recent.add(e.hash)
      if (recent.size > 4 * pageSize) recent.delete(recent.values().next().value!)
      last = e
    }
    after = last!.seq
    options.onProgress?.(checked, after)
    if (rows.rows.length < pageSize) break
  }
  const headRow = await sql<{
    seq: number | string
    hash: string
  }>`select seq, hash from event_chain_head where id = 1`.execute(db)
  const head = headRow.rows[0]
    ? { seq: Number(headRow.rows[0].seq), hash: headRow.rows[0].hash }
    : undefined
  if (head !== undefined) {
    if (head.seq > prevSeq) {
      report({
        kind: 'missing',
        seq: prevSeq + 1,
        message:
          head.seq === prevSeq + 1
            ? `seq ${head.seq} is missing: the chain head says the log ends at seq ${head.seq}, the last row is seq ${prevSeq}`
            : `seq ${prevSeq + 1}..${head.seq} are missing: the chain head says the log ends at seq ${head.seq}, the last row is seq ${prevSeq}`,
      })
    } else if (head.seq === prevSeq && head.hash !== prevHash && checked > 0) {
      report({
        kind: 'edited',
        seq: prevSeq,
        ...(last ? { at: last.at.toISOString() } : {}),
        message: `the last row (seq ${prevSeq}) does not carry the hash the chain head recorded`,
      })
    }
  }
  return {
    ok: issues.length === 0,
    checked,
    ...(last ? { last: { seq: last.seq, hash: last.hash } } : {}),
    ...(head ? { head } : {}),
    issues,
  }
}

/**
 * A row whose hash fails at its own seq may be intact but moved. It is, when it hashes right at the
 * position after the row its link points at, or at a position near its own (a swap).
 */
async function sealedElsewhere(
  db: Kysely<Database>,
  e: ChainedEvent,
  prepared: ReturnType<typeof preparedFromStored>,
): Promise<number | undefined> {
  const candidates: number[] = []
  if (e.prevHash === genesisHash) candidates.push(1)
  else {
    const pointed = await sql<{
      seq: number | string
    }>`select seq from event where hash = ${e.prevHash} limit 1`.execute(db)
    if (pointed.rows[0]) candidates.push(Number(pointed.rows[0].seq) + 1)
  }
  for (let d = 1; d <= 16; d++) candidates.push(e.seq - d, e.seq + d)
  for (const seq of candidates) {
    if (seq > 0 && seq !== e.seq && chainHash(e.prevHash, seq, prepared) === e.hash) return seq
  }
  return undefined
}
