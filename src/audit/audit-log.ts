import { sql } from 'kysely'
import { TesseraError } from '../errors.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Store, StoreTransaction } from '../store/store.js'
import { chainHash, prepareEvent, type ChainedEvent, type PreparedEvent } from './chain.js'
import type { AuditEventInput, EventObserver, EventSink } from './event-sink.js'
import { ensureDailyPartitions } from './partitions.js'

/**
 * The audit log: an `EventSink` that seals events into the hash chain of the `event` table.
 *
 * Group commit: appends that arrive while a batch is being written wait and go together in the next
 * batch, one transaction (one INSERT, or COPY on PostgreSQL), so the rate grows with the load while
 * each caller's promise still resolves only after its events are committed.
 *
 * One chain across replicas: each batch transaction locks the single `event_chain_head` row
 * (SELECT … FOR UPDATE), reads the last seq and hash, seals its events after them and moves the
 * head. Replicas on one PostgreSQL therefore append one batch at a time to one chain; seq has no
 * gaps and no duplicates.
 */
export interface AuditLog extends EventSink {
  /** Adds an observer: it is called with every durable batch, in seq order. */
  subscribe(observer: EventObserver): () => void
  /** Resolves when every event appended so far is durable and every observer has seen it. */
  flush(): Promise<void>
  /** Creates the daily partitions for today and the next days (run at start and daily). */
  maintainPartitions(): Promise<void>
  /** Stops taking events, writes what is pending and waits for the observers. */
  close(): Promise<void>
}

export interface AuditLogDeps {
  store: Pick<Store, 'transaction' | 'backend' | 'db'>
  clock?: Clock
  observers?: readonly EventObserver[]
  /** An observer failed (it keeps getting later batches). Default: ignored. */
  onObserverError?: (err: unknown, observer: EventObserver) => void
  /** A partition maintenance run failed. Default: ignored (events go to the default partition). */
  onPartitionError?: (err: unknown) => void
  /** Events per INSERT/COPY statement (default 10,000). */
  maxStatementRows?: number
  /** How many days of partitions to keep ahead (default 3; 0 turns partition management off). */
  partitionDaysAhead?: number
  /**
   * How rows reach PostgreSQL: `copy` (COPY FROM STDIN) or `json` (one INSERT … SELECT FROM
   * json_populate_recordset). Default `copy` on PostgreSQL; the embedded store always uses `json`.
   */
  insertMode?: 'copy' | 'json'
}

interface Waiter {
  resolve(): void
  reject(err: unknown): void
}

interface Batch {
  events: PreparedEvent[]
  waiters: Waiter[]
  /** The chain position the events were sealed after, ahead of the write (see `sealAhead`). */
  base?: { seq: number; hash: string }
  prevs: string[]
  hashes: string[]
}

const emptyBatch = (): Batch => ({ events: [], waiters: [], prevs: [], hashes: [] })

const columns = [
  'seq',
  'at',
  'event_type',
  'actor',
  'subject',
  'resource',
  'action',
  'decision',
  'request_id',
  'data',
  'prev_hash',
  'hash',
] as const

export function createAuditLog(deps: AuditLogDeps): AuditLog {
  const clock = deps.clock ?? systemClock
  const now = () => clock.now()
  const observers = new Set<EventObserver>(deps.observers ?? [])
  const maxStatementRows = deps.maxStatementRows ?? 10_000
  const daysAhead = deps.partitionDaysAhead ?? 3
  const mode = deps.store.backend === 'postgres' ? (deps.insertMode ?? 'copy') : 'json'
  let pending: Batch = emptyBatch()
  // Where the chain will end once everything sealed so far is written, when this process is the
  // only writer; undefined until the first write, and after a failed one.
  let predicted: { seq: number; hash: string } | undefined
  let writing: Promise<void> | undefined
  let closed = false
  // One delivery chain per observer: batches reach it in order without holding up the writer.
  const deliveries = new Map<EventObserver, Promise<void>>()
  let partitionsReady: Promise<void> | undefined =
    daysAhead > 0 ? maintainPartitions().catch(() => {}) : undefined

  async function maintainPartitions(): Promise<void> {
    try {
      await ensureDailyPartitions(deps.store.db, now(), daysAhead)
    } catch (err) {
      deps.onPartitionError?.(err)
    }
  }

  function enqueue(prepared: PreparedEvent[]): Promise<void> {
    if (closed) {
      return Promise.reject(new TesseraError('TSR_STORE_UNAVAILABLE', 'the audit log is closed'))
    }
    return new Promise<void>((resolve, reject) => {
      for (const e of prepared) pending.events.push(e)
      pending.waiters.push({ resolve, reject })
      sealAhead(pending)
      if (writing === undefined) writing = drain()
    })
  }

  /**
   * Hashes a pending batch's events while the previous batch is being written, from where that
   * batch will end. The write checks the chain head: if another replica wrote in between (or a
   * write failed), the batch is sealed again inside its transaction. One process alone thus hashes
   * outside the critical section, overlapping PostgreSQL's work.
   */
  function sealAhead(batch: Batch): void {
    if (predicted === undefined) return
    if (batch.base === undefined) {
      if (batch.hashes.length > 0) return
      batch.base = { ...predicted }
    }
    let tail = predicted
    for (let i = batch.hashes.length; i < batch.events.length; i++) {
      const seq = tail.seq + 1
      const hash = chainHash(tail.hash, seq, batch.events[i]!)
      batch.prevs.push(tail.hash)
      batch.hashes.push(hash)
      tail = { seq, hash }
    }
    predicted = tail
  }

  async function drain(): Promise<void> {
    try {
      if (partitionsReady) {
        await partitionsReady
        partitionsReady = undefined
      }
      while (pending.events.length > 0) {
        const batch = pending
        pending = emptyBatch()
        let sealed: ChainedEvent[]
        try {
          let end: { seq: number; hash: string }
          ;({ sealed, end } = await deps.store.transaction((tx) => writeBatch(tx, batch)))
          const base = pending.base
          if (base === undefined || base.seq !== end.seq || base.hash !== end.hash) {
            // The next batch was sealed on a wrong guess (another writer came between): again.
            pending.base = undefined
            pending.prevs = []
            pending.hashes = []
            predicted = end
            sealAhead(pending)
          }
        } catch (err) {
          // The chain end is unknown now: the next write reads it and seals there.
          predicted = undefined
          pending.base = undefined
          pending.prevs = []
          pending.hashes = []
          const failure = new TesseraError(
            'TSR_STORE_UNAVAILABLE',
            `the audit log could not write ${batch.events.length} event(s): ${(err as Error).message}`,
            { cause: err },
          )
          for (const w of batch.waiters) w.reject(failure)
          continue
        }
        for (const w of batch.waiters) w.resolve()
        if (observers.size > 0 && sealed[0] !== undefined) deliver(sealed)
      }
    } finally {
      writing = undefined
    }
  }

  async function writeBatch(
    tx: StoreTransaction,
    batch: Batch,
  ): Promise<{ sealed: ChainedEvent[]; end: { seq: number; hash: string } }> {
    const events = batch.events
    const head = await sql<{
      seq: number | string
      hash: string
    }>`select seq, hash from event_chain_head where id = 1 for update`.execute(tx.db)
    const row = head.rows[0]
    if (!row) throw new Error('event_chain_head is missing (migration 0007 not applied?)')
    const headSeq = Number(row.seq)
    const sealed: ChainedEvent[] = new Array(events.length)
    const ahead =
      batch.base !== undefined && batch.base.seq === headSeq && batch.base.hash === row.hash
    let hashes = batch.hashes
    let prevs = batch.prevs
    if (!ahead) {
      hashes = []
      prevs = []
    }
    let seq = headSeq + hashes.length
    let prev = hashes.length === 0 ? row.hash : hashes[hashes.length - 1]!
    for (let i = hashes.length; i < events.length; i++) {
      seq += 1
      const hash = chainHash(prev, seq, events[i]!)
      prevs.push(prev)
      hashes.push(hash)
      prev = hash
    }
    const firstSeq = headSeq + 1
    for (let i = 0; i < events.length; i += maxStatementRows) {
      const end = Math.min(events.length, i + maxStatementRows)
      if (mode === 'copy') await copyRows(tx, events, firstSeq, prevs, hashes, i, end)
      else await jsonRows(tx, events, firstSeq, prevs, hashes, i, end)
    }
    await sql`update event_chain_head set seq = ${seq}, hash = ${prev}, updated_at = now() where id = 1`.execute(
      tx.db,
    )
    const end = { seq, hash: prev }
    // Readers get the events as stored; built only when someone reads them.
    if (observers.size === 0) return { sealed, end }
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!
      sealed[i] = {
        seq: firstSeq + i,
        at: e.at,
        type: e.type,
        ...(e.actor === null ? {} : { actor: e.actor }),
        ...(e.subject === null ? {} : { subject: e.subject }),
        ...(e.resource === null ? {} : { resource: e.resource }),
        ...(e.action === null ? {} : { action: e.action }),
        ...(e.decision === null ? {} : { decision: e.decision }),
        ...(e.requestId === null ? {} : { requestId: e.requestId }),
        data: e.dataJson === '{}' ? {} : (JSON.parse(e.dataJson) as Record<string, unknown>),
        prevHash: prevs[i]!,
        hash: hashes[i]!,
      }
    }
    return { sealed, end }
  }

  function deliver(batch: ChainedEvent[]): void {
    for (const observer of observers) {
      const previous = deliveries.get(observer) ?? Promise.resolve()
      const next = previous.then(async () => {
        try {
          await observer.observe(batch)
        } catch (err) {
          deps.onObserverError?.(err, observer)
        }
      })
      deliveries.set(observer, next)
    }
  }

  async function flush(): Promise<void> {
    while (writing !== undefined) await writing.catch(() => {})
    await Promise.all([...deliveries.values()])
  }

  return {
    append(event: AuditEventInput) {
      let prepared: PreparedEvent
      try {
        prepared = prepareEvent(event, now)
      } catch (err) {
        return Promise.reject(err)
      }
      return enqueue([prepared])
    },
    appendMany(events: readonly AuditEventInput[]) {
      if (events.length === 0) return Promise.resolve()
      let prepared: PreparedEvent[]
      try {
        prepared = events.map((e) => prepareEvent(e, now))
      } catch (err) {
        return Promise.reject(err)
      }
      return enqueue(prepared)
    },
    subscribe(observer) {
      observers.add(observer)
      return () => {
        observers.delete(observer)
      }
    },
    flush,
    maintainPartitions,
    async close() {
      closed = true
      await flush()
    },
  }
}

const isoCache = new Map<number, string>()
function iso(d: Date): string {
  const t = d.getTime()
  let text = isoCache.get(t)
  if (text === undefined) {
    if (isoCache.size >= 1024) isoCache.clear()
    text = d.toISOString()
    isoCache.set(t, text)
  }
  return text
}

async function copyRows(
  tx: StoreTransaction,
  events: PreparedEvent[],
  firstSeq: number,
  prevs: string[],
  hashes: string[],
  start: number,
  end: number,
): Promise<void> {
  // StoreTransaction.bulkInsert streams COPY text inside the transaction; values are given raw
  // here, with `data` as its JSON text (a string column value is written as is).
  const rows: (string | number | null)[][] = new Array(end - start)
  for (let i = start; i < end; i++) {
    const e = events[i]!
    rows[i - start] = [
      firstSeq + i,
      iso(e.at),
      e.type,
      e.actor,
      e.subject,
      e.resource,
      e.action,
      e.decision,
      e.requestId,
      e.dataJson,
      prevs[i]!,
      hashes[i]!,
    ]
  }
  await tx.bulkInsert('event', columns, rows)
}

async function jsonRows(
  tx: StoreTransaction,
  events: PreparedEvent[],
  firstSeq: number,
  prevs: string[],
  hashes: string[],
  start: number,
  end: number,
): Promise<void> {
  const parts: string[] = new Array(end - start)
  for (let i = start; i < end; i++) {
    const e = events[i]!
    parts[i - start] =
      `{"seq":${firstSeq + i},"at":"${iso(e.at)}","event_type":${JSON.stringify(e.type)},` +
      `"actor":${JSON.stringify(e.actor)},"subject":${JSON.stringify(e.subject)},` +
      `"resource":${JSON.stringify(e.resource)},"action":${JSON.stringify(e.action)},` +
      `"decision":${JSON.stringify(e.decision)},"request_id":${JSON.stringify(e.requestId)},` +
      `"data":${e.dataJson},"prev_hash":"${prevs[i]}","hash":"${hashes[i]}"}`
  }
  const json = '[' + parts.join(',') + ']'
  await sql`insert into event (${sql.raw(columns.join(', '))})
    select ${sql.raw(columns.join(', '))} from json_populate_recordset(null::event, ${json}::json)`.execute(
    tx.db,
  )
}
