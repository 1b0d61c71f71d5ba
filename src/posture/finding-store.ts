import { randomUUID } from 'node:crypto'
import { sql, type RawBuilder } from 'kysely'
import { TesseraError } from '../errors.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import { severities, type FindingTable, type Store } from '../store/index.js'
import type {
  FindingInput,
  FindingReporter,
  FindingReportResult,
  Severity,
} from './finding-types.js'
import type { Selectable } from 'kysely'

export type FindingStatus = 'open' | 'accepted' | 'resolved'
export const findingStatuses = ['open', 'accepted', 'resolved'] as const

export interface FindingView {
  id: string
  rule: string
  severity: Severity
  subjectType: string
  subjectId: string | null
  subjectRef: string
  evidence: Record<string, unknown>
  owner: string | null
  status: FindingStatus
  acceptedReason: string | null
  acceptedUntil: string | null
  firstSeenAt: string
  lastSeenAt: string
  resolvedAt: string | null
}

export interface FindingFilter {
  rule?: string
  owner?: string
  severity?: Severity
  status?: FindingStatus
  subject?: string
  /** 1..1000, default 100 */
  limit?: number
  cursor?: string
}

export interface FindingPage {
  items: FindingView[]
  nextCursor?: string
}

export interface AcceptInput {
  reason: string
  until: Date
  by?: string
}

export interface FindingStore extends FindingReporter {
  /**
   * Runs a set-based rule query (see FindingRowsQuery) in the database: upserts every row it
   * selects as seen now; with `complete` (the default) the rule's findings it did not select
   * resolve. Nothing is pulled into memory, so a rule over a million identities stays in SQL.
   */
  reportQuery(
    rule: string,
    severity: Severity,
    rows: RawBuilder<unknown>,
    options?: { complete?: boolean },
  ): Promise<FindingReportResult>
  list(filter?: FindingFilter): Promise<FindingPage>
  get(id: string): Promise<FindingView | undefined>
  /** Accepts an open finding until `until`; it reopens by itself once that passes. */
  accept(id: string, input: AcceptInput): Promise<FindingView>
  /** Reopens accepted findings whose acceptance has expired; returns how many. */
  reopenExpired(): Promise<number>
  /** Open findings per rule and severity. */
  counts(): Promise<Array<{ rule: string; severity: Severity; status: FindingStatus; n: number }>>
}

export interface FindingStoreDeps {
  store: Store
  clock?: Clock
  /** Report ids; random unless a test wants fixed ones. */
  newId?: () => string
}

const maxReason = 500
const chunk = 2000
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The finding store: every finding producer (posture rules, governance, drift, anomalies) reports
 * through it. A finding's identity is its dedup key (default `rule:subjectRef`): seeing it again
 * bumps `last_seen_at`; a resolved one that comes back reopens; an accepted one stays accepted until
 * its acceptance expires. A complete report resolves the rule's findings it no longer contains.
 */
export function createFindingStore({
  store,
  clock = systemClock,
  newId = randomUUID,
}: FindingStoreDeps): FindingStore {
  const db = store.db

  async function upsert(
    rule: string,
    severity: Severity,
    rows: RawBuilder<unknown>,
    report: string,
    now: Date,
    hasKey = false,
  ): Promise<{ inserted: number; seen: number }> {
    const t = now.toISOString()
    // DISTINCT ON keeps one row per key: ON CONFLICT may not touch a row twice in one statement.
    const r = await sql<{ inserted: string | number; seen: string | number }>`
      with found as (
        select distinct on (k.dedup_key) k.* from (
          select ${hasKey ? sql`coalesce(q.dedup_key, ${rule} || ':' || q.subject_ref)` : sql`${rule} || ':' || q.subject_ref`} as dedup_key,
            q.severity, q.subject_type, q.subject_id, q.subject_ref, q.owner_ref,
            q.identity_id, q.evidence
          from (${rows}) q
        ) k
      ),
      up as (
        insert into finding as f (id, dedup_key, rule, severity, subject_type, subject_id,
          subject_ref, evidence, owner_ref, identity_id, status, first_seen_at, last_seen_at,
          last_report)
        select gen_random_uuid(), found.dedup_key, ${rule}, coalesce(found.severity, ${severity}),
          found.subject_type, found.subject_id, found.subject_ref,
          coalesce(found.evidence, '{}'::jsonb), found.owner_ref, found.identity_id, 'open',
          ${t}::timestamptz, ${t}::timestamptz, ${report}
        from found
        on conflict (dedup_key) do update set
          severity = excluded.severity,
          subject_type = excluded.subject_type,
          subject_id = excluded.subject_id,
          subject_ref = excluded.subject_ref,
          evidence = excluded.evidence,
          owner_ref = excluded.owner_ref,
          identity_id = excluded.identity_id,
          last_seen_at = excluded.last_seen_at,
          last_report = excluded.last_report,
          resolved_at = null,
          status = case
            when f.status = 'accepted' and f.accepted_until > excluded.last_seen_at then 'accepted'
            else 'open' end
        returning (xmax = 0) as inserted
      )
      select count(*) filter (where inserted) as inserted, count(*) as seen from up
    `.execute(db)
    const row = r.rows[0]
    return { inserted: Number(row?.inserted ?? 0), seen: Number(row?.seen ?? 0) }
  }

  async function resolveUnseen(rule: string, report: string, now: Date): Promise<number> {
    const r = await db
      .updateTable('finding')
      .set({ status: 'resolved', resolved_at: now })
      .where('rule', '=', rule)
      .where('status', 'in', ['open', 'accepted'])
      .where((eb) => eb.or([eb('last_report', 'is', null), eb('last_report', '!=', report)]))
      .executeTakeFirst()
    return Number(r.numUpdatedRows)
  }

  async function reopenExpired(): Promise<number> {
    const now = clock.now()
    const r = await db
      .updateTable('finding')
      .set({ status: 'open' })
      .where('status', '=', 'accepted')
      .where('accepted_until', '<=', now)
      .executeTakeFirst()
    return Number(r.numUpdatedRows)
  }

  const self: FindingStore = {
    async report(rule, findings, options = {}) {
      checkRule(rule)
      const now = clock.now()
      const report = newId()
      let inserted = 0
      let seen = 0
      const rows = findings.map((f, i) => validInput(rule, f, i))
      for (let i = 0; i < rows.length; i += chunk) {
        const part = rows.slice(i, i + chunk)
        const json = JSON.stringify(part)
        const q = sql`
          select t.dedup_key, t.severity, t.subject_type, t.subject_id, t.subject_ref,
            t.owner_ref, t.identity_id, t.evidence
          from jsonb_to_recordset(${json}::jsonb) as t(dedup_key text, severity text,
            subject_type text, subject_id uuid, subject_ref text, owner_ref text,
            identity_id uuid, evidence jsonb)`
        const r = await upsert(rule, 'medium', q, report, now, true)
        inserted += r.inserted
        seen += r.seen
      }
      const resolved = options.complete ? await resolveUnseen(rule, report, now) : 0
      return { opened: inserted, updated: seen - inserted, resolved }
    },

    async reportQuery(rule, severity, rows, options = {}) {
      checkRule(rule)
      const now = clock.now()
      const report = newId()
      const r = await upsert(rule, severity, rows, report, now)
      const resolved = options.complete === false ? 0 : await resolveUnseen(rule, report, now)
      return { opened: r.inserted, updated: r.seen - r.inserted, resolved }
    },

    async list(filter = {}) {
      await reopenExpired()
      const limit = filter.limit ?? 100
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new TesseraError('TSR_VALIDATION', 'limit must be an integer from 1 to 1000')
      }
      const offset = filter.cursor === undefined ? 0 : decodeCursor(filter.cursor)
      if (filter.severity !== undefined && !severities.includes(filter.severity)) {
        throw new TesseraError('TSR_VALIDATION', `severity must be one of ${severities.join(', ')}`)
      }
      if (filter.status !== undefined && !findingStatuses.includes(filter.status)) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `status must be one of ${findingStatuses.join(', ')}`,
        )
      }
      let q = db.selectFrom('finding').selectAll()
      if (filter.rule !== undefined) q = q.where('rule', '=', filter.rule)
      if (filter.owner !== undefined) q = q.where('owner_ref', '=', filter.owner)
      if (filter.severity !== undefined) q = q.where('severity', '=', filter.severity)
      if (filter.status !== undefined) q = q.where('status', '=', filter.status)
      if (filter.subject !== undefined) {
        const s = filter.subject
        q = q.where((eb) =>
          uuidPattern.test(s)
            ? eb.or([eb('subject_id', '=', s), eb('subject_ref', '=', s)])
            : eb('subject_ref', '=', s),
        )
      }
      const rows = await q
        .orderBy(severityRank, 'desc')
        .orderBy('first_seen_at')
        .orderBy('id')
        .limit(limit + 1)
        .offset(offset)
        .execute()
      const items = rows.slice(0, limit).map(findingView)
      return rows.length > limit ? { items, nextCursor: encodeCursor(offset + limit) } : { items }
    },

    async get(id) {
      if (!uuidPattern.test(id)) return undefined
      await reopenExpired()
      const row = await db.selectFrom('finding').selectAll().where('id', '=', id).executeTakeFirst()
      return row ? findingView(row) : undefined
    },

    async accept(id, input) {
      const reason = input.reason?.trim() ?? ''
      if (reason.length === 0 || reason.length > maxReason) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `an acceptance needs a reason of 1 to ${maxReason} characters`,
        )
      }
      const now = clock.now()
      if (!(input.until instanceof Date) || Number.isNaN(input.until.getTime())) {
        throw new TesseraError('TSR_VALIDATION', 'an acceptance needs an expiry (until)')
      }
      if (input.until.getTime() <= now.getTime()) {
        throw new TesseraError('TSR_VALIDATION', 'the acceptance expiry must be in the future')
      }
      const current = await self.get(id)
      if (!current) throw new TesseraError('TSR_NOT_FOUND', `no finding ${JSON.stringify(id)}`)
      if (current.status === 'resolved') {
        throw new TesseraError('TSR_CONFLICT', `finding ${id} is resolved; nothing to accept`)
      }
      const by = input.by === undefined ? '' : ` (by ${input.by})`
      await db
        .updateTable('finding')
        .set({
          status: 'accepted',
          accepted_reason: `${reason}${by}`,
          accepted_until: input.until,
        })
        .where('id', '=', id)
        .execute()
      return (await self.get(id))!
    },

    reopenExpired,

    async counts() {
      const rows = await db
        .selectFrom('finding')
        .select(['rule', 'severity', 'status', (eb) => eb.fn.countAll<string>().as('n')])
        .groupBy(['rule', 'severity', 'status'])
        .orderBy('rule')
        .execute()
      return rows.map((r) => ({
        rule: r.rule,
        severity: r.severity,
        status: r.status,
        n: Number(r.n),
      }))
    },
  }
  return self
}

const severityRank = sql<number>`case severity when 'critical' then 4 when 'high' then 3
  when 'medium' then 2 when 'low' then 1 else 0 end`

function checkRule(rule: string): void {
  if (typeof rule !== 'string' || !/^[a-z0-9][a-z0-9._:-]{0,99}$/.test(rule)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `rule ${JSON.stringify(rule)} must be 1 to 100 lower-case letters, digits, . _ : -`,
    )
  }
}

function validInput(rule: string, f: FindingInput, index: number): Record<string, unknown> {
  const fail = (what: string): never => {
    throw new TesseraError('TSR_VALIDATION', `finding ${index} of ${rule}: ${what}`)
  }
  if (f.rule !== rule) fail(`its rule is ${JSON.stringify(f.rule)}`)
  if (!severities.includes(f.severity)) fail(`severity must be one of ${severities.join(', ')}`)
  if (typeof f.subjectType !== 'string' || f.subjectType === '') fail('subjectType is required')
  if (typeof f.subjectRef !== 'string' || f.subjectRef === '') fail('subjectRef is required')
  if (f.subjectId !== undefined && !uuidPattern.test(f.subjectId)) fail('subjectId must be a uuid')
  if (f.evidence === null || typeof f.evidence !== 'object' || Array.isArray(f.evidence)) {
    fail('evidence must be an object')
  }
  return {
    dedup_key: f.dedupKey ?? null,
    severity: f.severity,
    subject_type: f.subjectType,
    subject_id: f.subjectId ?? null,
    subject_ref: f.subjectRef,
    owner_ref: f.ownerRef ?? null,
    identity_id: f.subjectType === 'identity' ? (f.subjectId ?? null) : null,
    evidence: f.evidence,
  }
}

function encodeCursor(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url')
}

function decodeCursor(cursor: string): number {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { o?: unknown }
    if (typeof v.o === 'number' && Number.isInteger(v.o) && v.o >= 0) return v.o
  } catch {
    // falls through to the error below
  }
  throw new TesseraError('TSR_VALIDATION', 'cursor is not one this server issued')
}

function iso(v: Date | string | null): string | null {
  return v === null ? null : new Date(v).toISOString()
}

export function findingView(r: Selectable<FindingTable>): FindingView {
  return {
    id: r.id,
    rule: r.rule,
    severity: r.severity,
    subjectType: r.subject_type,
    subjectId: r.subject_id,
    subjectRef: r.subject_ref,
    evidence:
      typeof r.evidence === 'string'
        ? (JSON.parse(r.evidence) as Record<string, unknown>)
        : r.evidence,
    owner: r.owner_ref,
    status: r.status,
    acceptedReason: r.accepted_reason,
    acceptedUntil: iso(r.accepted_until),
    firstSeenAt: iso(r.first_seen_at)!,
    lastSeenAt: iso(r.last_seen_at)!,
    resolvedAt: iso(r.resolved_at),
  }
}
