import { sql } from 'kysely'
import { TesseraError } from '../errors.js'
import type { EventSink } from '../audit/event-sink.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import { parseSpiffeId } from '../spiffe/id.js'
import type { Store } from '../store/store.js'

/**
 * The deny-list: SPIFFE IDs, certificate serials, JWT ids and agents that must no longer be served
 * or trusted. Rows are append-only (`revocation` table); an entry stops applying at its optional
 * `expiresAt` (set it to the revoked credential's own expiry so the list does not grow for ever).
 * Agents and relying parties follow the list incrementally by `id` (`list({ after })`).
 */

export const revocationTargets = ['spiffe_id', 'serial', 'jti', 'agent'] as const
export type RevocationTarget = (typeof revocationTargets)[number]

export interface RevocationInput {
  targetType: RevocationTarget
  value: string
  reason?: string
  expiresAt?: Date
  createdBy?: string
}

export interface RevocationView {
  id: number
  targetType: RevocationTarget
  value: string
  reason: string | null
  createdAt: string
  expiresAt: string | null
  createdBy: string | null
}

export interface RevocationPage {
  items: RevocationView[]
  /** The highest id in the list so far: pass it as `after` to get only what is newer. */
  latest: number
}

export interface RevocationListOptions {
  /** Only entries with a larger id (incremental sync). */
  after?: number
  /** Include entries whose `expiresAt` has passed (default false). */
  includeExpired?: boolean
  limit?: number
}

/** What a relying party asks: is any of these identifiers on the deny-list? */
export interface RevocationQuery {
  spiffeId?: string
  serial?: string
  jti?: string
  agentId?: string
}

export interface RevocationList {
  /** Adds an entry; adding the same active target again returns the existing entry. */
  add(input: RevocationInput): Promise<RevocationView>
  list(options?: RevocationListOptions): Promise<RevocationPage>
  /** The entry that denies `query`, if any (checks the store, so it sees other replicas' writes). */
  find(query: RevocationQuery): Promise<RevocationView | undefined>
}

export interface RevocationDeps {
  store: Store
  clock?: Clock
  /** Where `revocation.created` is recorded; `add` resolves after the event is durable. */
  events?: EventSink
  /**
   * Runs after an entry is added (e.g. revoking a SPIFFE ID's dynamic credentials). Its failure does
   * not undo the entry; whoever acts on it must also find the entry later (the dynamic reaper does).
   */
  onAdded?: (entry: RevocationView) => Promise<void>
}

const maxReason = 500
const maxPage = 10_000
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * A certificate serial as the deny-list keeps it: lower-case hex without separators or leading
 * zeros, so `0A:1B`, `0a1b` and `A1B` are the same serial.
 */
export function normaliseSerial(serial: string): string {
  const hex = serial.trim().replace(/:/g, '').toLowerCase()
  if (!/^[0-9a-f]{1,64}$/.test(hex)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `serial "${serial}" is not hexadecimal (at most 32 bytes)`,
    )
  }
  return hex.replace(/^0+(?=.)/, '')
}

/** Checks and normalises a deny-list target; throws TSR_VALIDATION with the reason. */
export function normaliseTarget(targetType: RevocationTarget, value: string): string {
  switch (targetType) {
    case 'spiffe_id': {
      const id = value.trim()
      try {
        parseSpiffeId(id)
      } catch (err) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `"${value}" is not a SPIFFE ID (${(err as Error).message})`,
          { cause: err },
        )
      }
      return id
    }
    case 'serial':
      return normaliseSerial(value)
    case 'jti': {
      if (value.length === 0 || value.length > 256 || !/^[\x21-\x7e]+$/.test(value)) {
        throw new TesseraError('TSR_VALIDATION', 'a jti is 1 to 256 printable ASCII characters')
      }
      return value
    }
    case 'agent': {
      const id = value.trim().toLowerCase()
      if (!uuidPattern.test(id)) {
        throw new TesseraError('TSR_VALIDATION', `agent "${value}" is not an agent id (a uuid)`)
      }
      return id
    }
  }
}

export function createRevocationList(deps: RevocationDeps): RevocationList {
  const db = deps.store.db
  const clock = deps.clock ?? systemClock

  const active = (now: Date) =>
    sql<boolean>`(expires_at is null or expires_at > ${now.toISOString()}::timestamptz)`

  return {
    async add(input) {
      const value = normaliseTarget(input.targetType, input.value)
      if (input.reason !== undefined && input.reason.length > maxReason) {
        throw new TesseraError('TSR_VALIDATION', `reason is longer than ${maxReason} characters`)
      }
      const now = clock.now()
      if (input.expiresAt !== undefined && input.expiresAt.getTime() <= now.getTime()) {
        throw new TesseraError('TSR_VALIDATION', 'expiresAt is in the past')
      }
      let created = false
      const result = await deps.store.transaction(async ({ db: tx }) => {
        // One writer per target at a time, so two replicas adding the same target make one row.
        await sql`select pg_advisory_xact_lock(hashtext(${'revocation:' + input.targetType + ':' + value}))`.execute(
          tx,
        )
        if (input.targetType === 'agent') {
          const agent = await tx
            .updateTable('agent')
            .set({ banned: true })
            .where('id', '=', value)
            .returning('id')
            .executeTakeFirst()
          if (!agent) throw new TesseraError('TSR_NOT_FOUND', `no agent ${value}`)
        }
        const existing = await tx
          .selectFrom('revocation')
          .selectAll()
          .where('target_type', '=', input.targetType)
          .where('value', '=', value)
          .where(active(now))
          .orderBy('id', 'desc')
          .executeTakeFirst()
        if (existing) return view(existing)
        const row = await tx
          .insertInto('revocation')
          .values({
            target_type: input.targetType,
            value,
            reason: input.reason ?? null,
            created_at: now,
            expires_at: input.expiresAt ?? null,
            created_by: input.createdBy ?? null,
          })
          .returningAll()
          .executeTakeFirstOrThrow()
        created = true
        return view(row)
      })
      if (created && deps.events) {
        await deps.events.append({
          type: 'revocation.created',
          ...(result.createdBy ? { actor: result.createdBy } : {}),
          subject: result.value,
          action: 'revoke',
          at: now,
          data: {
            id: result.id,
            targetType: result.targetType,
            ...(result.reason ? { reason: result.reason } : {}),
            ...(result.expiresAt ? { expiresAt: result.expiresAt } : {}),
          },
        })
      }
      if (deps.onAdded) await deps.onAdded(result).catch(() => {})
      return result
    },

    async list(options = {}) {
      const limit = options.limit ?? maxPage
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxPage) {
        throw new TesseraError('TSR_VALIDATION', `limit must be 1 to ${maxPage}`)
      }
      const after = options.after ?? 0
      if (!Number.isSafeInteger(after) || after < 0) {
        throw new TesseraError('TSR_VALIDATION', 'after must be a non-negative integer')
      }
      let query = db
        .selectFrom('revocation')
        .selectAll()
        .where('id', '>', after)
        .orderBy('id')
        .limit(limit)
      if (options.includeExpired !== true) query = query.where(active(clock.now()))
      const rows = await query.execute()
      const items = rows.map(view)
      const latest = items.length > 0 ? items[items.length - 1]!.id : after
      return { items, latest }
    },

    async find(query) {
      const targets: [RevocationTarget, string][] = []
      if (query.spiffeId !== undefined) targets.push(['spiffe_id', query.spiffeId])
      if (query.serial !== undefined) targets.push(['serial', normaliseSerial(query.serial)])
      if (query.jti !== undefined) targets.push(['jti', query.jti])
      if (query.agentId !== undefined) targets.push(['agent', query.agentId.toLowerCase()])
      if (targets.length === 0) return undefined
      const row = await db
        .selectFrom('revocation')
        .selectAll()
        .where((eb) =>
          eb.or(
            targets.map(([type, value]) =>
              eb.and([eb('target_type', '=', type), eb('value', '=', value)]),
            ),
          ),
        )
        .where(active(clock.now()))
        .orderBy('id')
        .executeTakeFirst()
      return row ? view(row) : undefined
    },
  }
}

/** An in-memory matcher over a deny-list snapshot (agents and relying parties use it per request). */
export interface DenyListMatcher {
  denies(query: RevocationQuery, now: Date): RevocationView | undefined
  /** Applies newer entries (from `list({ after })`). */
  apply(items: readonly RevocationView[]): void
  readonly latest: number
}

export function createDenyListMatcher(initial: readonly RevocationView[] = []): DenyListMatcher {
  const byKey = new Map<string, RevocationView>()
  let latest = 0
  const key = (type: RevocationTarget, value: string) => type + '\0' + value
  const matcher: DenyListMatcher = {
    denies(query, now) {
      const keys: string[] = []
      if (query.spiffeId !== undefined) keys.push(key('spiffe_id', query.spiffeId))
      if (query.serial !== undefined) {
        try {
          keys.push(key('serial', normaliseSerial(query.serial)))
        } catch {
          // A serial that is not hex is on no list.
        }
      }
      if (query.jti !== undefined) keys.push(key('jti', query.jti))
      if (query.agentId !== undefined) keys.push(key('agent', query.agentId.toLowerCase()))
      for (const k of keys) {
        const hit = byKey.get(k)
        if (hit && (hit.expiresAt === null || Date.parse(hit.expiresAt) > now.getTime())) return hit
      }
      return undefined
    },
    apply(items) {
      for (const item of items) {
        const k = key(item.targetType, item.value)
        const prev = byKey.get(k)
        // Keep the entry that lasts longest (no expiry beats any expiry).
        if (!prev || lastsLonger(item, prev)) byKey.set(k, item)
        if (item.id > latest) latest = item.id
      }
    },
    get latest() {
      return latest
    },
  }
  matcher.apply(initial)
  return matcher
}

function lastsLonger(a: RevocationView, b: RevocationView): boolean {
  if (b.expiresAt === null) return false
  if (a.expiresAt === null) return true
  return Date.parse(a.expiresAt) > Date.parse(b.expiresAt)
}

function view(row: {
  id: number | string
  target_type: RevocationTarget
  value: string
  reason: string | null
  created_at: Date | string
  expires_at: Date | string | null
  created_by: string | null
}): RevocationView {
  return {
    id: Number(row.id),
    targetType: row.target_type,
    value: row.value,
    reason: row.reason,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at).toISOString(),
    createdBy: row.created_by,
  }
}
