import { sql, type Kysely } from 'kysely'
import { TesseraError } from '../errors.js'
import type { Database } from '../store/schema.js'
import { rowToEvent, type ChainedEvent, type EventRow } from './chain.js'

/** Filters of `audit query`, `GET /v1/audit/events` and the exports. All are ANDed. */
export interface EventFilter {
  /** The identity the event is about (`subject`). */
  subject?: string
  actor?: string
  resource?: string
  action?: string
  /** An event type, or a prefix ending in `.*` (`entry.*`). */
  type?: string
  decision?: string
  /** From this instant, inclusive. */
  from?: Date
  /** Up to this instant, exclusive. */
  to?: Date
}

export interface EventQuery extends EventFilter {
  /** Page size, 1..1000 (default 100). */
  limit?: number
  /** `desc` (newest first, the default) or `asc`. */
  order?: 'asc' | 'desc'
  /** From a previous page's `nextCursor`. */
  cursor?: string
}

export interface EventPage {
  items: ChainedEvent[]
  /** Present when there may be more: pass it as `cursor` for the next page. */
  nextCursor?: string
}

const maxLimit = 1000
const typeFilterPattern = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*(\.\*)?$/

/** A cursor is the last seq of a page and the order, opaque to callers. */
function encodeCursor(seq: number, order: 'asc' | 'desc'): string {
  return Buffer.from(`${order}:${seq}`).toString('base64url')
}

function decodeCursor(cursor: string, order: 'asc' | 'desc'): number {
  const text = /^[A-Za-z0-9_-]{1,40}$/.test(cursor)
    ? Buffer.from(cursor, 'base64url').toString()
    : ''
  const match = /^(asc|desc):(\d{1,16})$/.exec(text)
  if (!match || match[1] !== order) {
    throw new TesseraError('TSR_VALIDATION', 'cursor: not a cursor of this query (or its order)')
  }
  return Number(match[2])
}

/** Checks the filter; throws TSR_VALIDATION naming the field. */
export function checkFilter(filter: EventFilter): void {
  for (const field of ['subject', 'actor', 'resource', 'action', 'decision'] as const) {
    const v = filter[field]
    if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > 4096)) {
      throw new TesseraError('TSR_VALIDATION', `${field}: must be 1 to 4096 characters`)
    }
  }
  if (filter.type !== undefined && !typeFilterPattern.test(filter.type)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      'type: an event type (entry.created) or a prefix with .* (entry.*)',
    )
  }
  for (const field of ['from', 'to'] as const) {
    const v = filter[field]
    if (v !== undefined && (!(v instanceof Date) || Number.isNaN(v.getTime()))) {
      throw new TesseraError('TSR_VALIDATION', `${field}: must be an instant`)
    }
  }
  if (filter.from && filter.to && filter.from.getTime() >= filter.to.getTime()) {
    throw new TesseraError('TSR_VALIDATION', 'from must be before to')
  }
}

function whereClause(filter: EventFilter) {
  const parts = [sql`true`]
  if (filter.subject !== undefined) parts.push(sql`subject = ${filter.subject}`)
  if (filter.actor !== undefined) parts.push(sql`actor = ${filter.actor}`)
  if (filter.resource !== undefined) parts.push(sql`resource = ${filter.resource}`)
  if (filter.action !== undefined) parts.push(sql`action = ${filter.action}`)
  if (filter.decision !== undefined) parts.push(sql`decision = ${filter.decision}`)
  if (filter.type !== undefined) {
    if (filter.type.endsWith('.*')) {
      // The pattern is checked above: only [a-z0-9_.-], so no LIKE metacharacters but `_`.
      const prefix = filter.type.slice(0, -1).replaceAll('_', '\\_')
      parts.push(sql`event_type like ${prefix + '%'}`)
    } else parts.push(sql`event_type = ${filter.type}`)
  }
  if (filter.from !== undefined) parts.push(sql`at >= ${filter.from.toISOString()}::timestamptz`)
  if (filter.to !== undefined) parts.push(sql`at < ${filter.to.toISOString()}::timestamptz`)
  return sql.join(parts, sql` and `)
}

/** One page of events matching `query`, in seq order (newest first by default). */
export async function queryEvents(
  db: Kysely<Database>,
  query: EventQuery = {},
): Promise<EventPage> {
  checkFilter(query)
  const limit = query.limit ?? 100
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) {
    throw new TesseraError('TSR_VALIDATION', `limit: must be from 1 to ${maxLimit}`)
  }
  const order = query.order ?? 'desc'
  if (order !== 'asc' && order !== 'desc') {
    throw new TesseraError('TSR_VALIDATION', 'order: asc or desc')
  }
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, order)
  const seqCondition =
    after === undefined ? sql`true` : order === 'asc' ? sql`seq > ${after}` : sql`seq < ${after}`
  const rows =
    await sql<EventRow>`select * from event where ${whereClause(query)} and ${seqCondition}
    order by seq ${sql.raw(order)} limit ${limit + 1}`.execute(db)
  const items = rows.rows.slice(0, limit).map(rowToEvent)
  const more = rows.rows.length > limit
  return {
    items,
    ...(more ? { nextCursor: encodeCursor(items.at(-1)!.seq, order) } : {}),
  }
}

/** Every event matching `filter`, oldest first, read page by page (for exports). */
export async function* streamEvents(
  db: Kysely<Database>,
  filter: EventFilter = {},
  pageSize = 1000,
): AsyncGenerator<ChainedEvent> {
  let cursor: string | undefined
  for (;;) {
    const page = await queryEvents(db, {
      ...filter,
      order: 'asc',
      limit: pageSize,
      ...(cursor ? { cursor } : {}),
    })
    yield* page.items
    if (!page.nextCursor) return
    cursor = page.nextCursor
  }
}
