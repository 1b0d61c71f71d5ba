import { sql } from 'kysely'
import { TesseraError } from '../errors.js'
import { entityId } from '../inventory/ids.js'
import {
  createOwnershipResolver,
  type Ownership,
  type OwnershipStep,
} from '../inventory/owners/ownership.js'
import type { CodeownersSource } from '../inventory/owners/codeowners.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'

/**
 * Reports over the graph: an owner's view ("everything I own, and what to fix first") and a
 * compliance summary. Both are plain data; report-render.ts turns them into CSV or HTML.
 */

export const severityOrder = ['critical', 'high', 'medium', 'low', 'info'] as const
export const severityWeight: Record<string, number> = {
  critical: 40,
  high: 20,
  medium: 8,
  low: 3,
  info: 1,
}

export interface ReportFinding {
  id: string
  rule: string
  severity: string
  subjectType: string
  subjectRef: string
  firstSeenAt: string
  lastSeenAt: string
  evidence: Record<string, unknown>
}

export interface OwnedIdentity {
  id: string
  ref: string
  name: string
  kind: string
  source: string
  state: string
  /** How this owner comes to own it: the deciding evidence. */
  via: string
  confidence: number
  /** The owner it resolves to: the person, or one of their teams. */
  owner: string
  lastUsedAt: string | null
  credentials: Array<{
    ref: string
    type: string
    expiresAt: string | null
    ageDays: number | null
    lastRotatedAt: string | null
  }>
  findings: ReportFinding[]
  /** Sum of open findings' severity weights. */
  risk: number
}

export interface OwnerReport {
  generatedAt: string
  owner: { ref: string; name: string; ownerType: string; status: string; teams: string[] }
  totals: {
    identities: number
    credentials: number
    openFindings: number
    bySeverity: Record<string, number>
  }
  identities: OwnedIdentity[]
  /** Open findings, most urgent first (severity, then the identity's risk). */
  fixFirst: Array<ReportFinding & { identity: string }>
}

export interface ComplianceReport {
  generatedAt: string
  identities: { total: number; byKind: Record<string, number>; bySource: Record<string, number> }
  ownerCoverage: {
    owned: number
    orphaned: number
    departedOwner: number
    unknownOwner: number
    percent: number
  }
  keyAge: { buckets: Array<{ bucket: string; count: number }>; staticCredentials: number }
  rotation: {
    staticCredentials: number
    everRotated: number
    rotatedWithin90Days: number
    percent: number
  }
  findings: {
    open: number
    bySeverity: Record<string, number>
    byRule: Record<string, number>
    accepted: number
  }
}

export interface ReportsDeps {
  store: Store
  clock?: Clock
  codeowners?: CodeownersSource
  order?: readonly OwnershipStep[]
}

export interface Reports {
  owner(ownerRef: string): Promise<OwnerReport>
  compliance(): Promise<ComplianceReport>
}

const keyAgeBuckets: Array<[string, number]> = [
  ['< 30 d', 30],
  ['30–90 d', 90],
  ['90–180 d', 180],
  ['180–365 d', 365],
  ['1–2 y', 730],
  ['> 2 y', Infinity],
]

const staticTypes = [
  'access_key',
  'api_key',
  'ssh_key',
  'private_key',
  'password',
  'client_secret',
  'connection_string',
  'token',
  'webhook',
]

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())

export function createReports(deps: ReportsDeps): Reports {
  const db = deps.store.db
  const clock = deps.clock ?? systemClock
  const resolver = () =>
    createOwnershipResolver({
      db,
      ...(deps.codeowners ? { codeowners: deps.codeowners } : {}),
      ...(deps.order ? { order: deps.order } : {}),
    })

  async function findingsFor(subjectIds: readonly string[]): Promise<Map<string, ReportFinding[]>> {
    const out = new Map<string, ReportFinding[]>()
    for (let i = 0; i < subjectIds.length; i += 2000) {
      const rows = await db
        .selectFrom('finding')
        .select([
          'id',
          'rule',
          'severity',
          'subject_type',
          'subject_id',
          'subject_ref',
          'first_seen_at',
          'last_seen_at',
          'evidence',
        ])
        .where('subject_id', 'in', subjectIds.slice(i, i + 2000))
        .where('status', '=', 'open')
        .execute()
      for (const r of rows) {
        const f: ReportFinding = {
          id: r.id,
          rule: r.rule,
          severity: r.severity,
          subjectType: r.subject_type,
          subjectRef: r.subject_ref,
          firstSeenAt: iso(r.first_seen_at)!,
          lastSeenAt: iso(r.last_seen_at)!,
          evidence: (r.evidence ?? {}) as Record<string, unknown>,
        }
        const list = out.get(r.subject_id!)
        if (list) list.push(f)
        else out.set(r.subject_id!, [f])
      }
    }
    return out
  }

  return {
    async owner(ownerRef) {
      const row = await db
        .selectFrom('owner')
        .select(['ref', 'name', 'owner_type', 'status', 'team_ref', 'attributes'])
        .where('id', '=', entityId('owner', ownerRef))
        .where('valid_to', 'is', null)
        .executeTakeFirst()
      if (!row) throw new TesseraError('TSR_NOT_FOUND', `no owner ${ownerRef}`)
      const a = (row.attributes ?? {}) as Record<string, unknown>
      const teams =
        row.owner_type === 'team'
          ? []
          : [
              ...new Set([
                ...(row.team_ref ? [row.team_ref] : []),
                ...(Array.isArray(a.teams) ? (a.teams as string[]) : []),
              ]),
            ]
      const mine = new Set([row.ref, ...teams])
      const refs = [...mine]
      // Candidates: whatever names one of these owners by an indexed fact; resolution then decides.
      const candidateIds = new Set<string>()
      const byOwner = await db
        .selectFrom('identity')
        .select('id')
        .where('valid_to', 'is', null)
        .where('owner_ref', 'in', refs)
        .execute()
      for (const r of byOwner) candidateIds.add(r.id)
      const assigned = await db
        .selectFrom('owner_assignment')
        .select('identity_id')
        .where('valid_to', 'is', null)
        .where('owner_ref', 'in', refs)
        .execute()
      for (const r of assigned) candidateIds.add(r.identity_id)
      const edges = await db
        .selectFrom('edge')
        .select(['to_id', 'to_type'])
        .where('valid_to', 'is', null)
        .where(
          'from_id',
          'in',
          refs.map((r) => entityId('owner', r)),
        )
        .where('edge_type', 'in', ['owns', 'created', 'delegated_to'])
        .execute()
      const credIds: string[] = []
      for (const e of edges) {
        if (e.to_type === 'identity') candidateIds.add(e.to_id)
        else credIds.push(e.to_id)
      }
      if (credIds.length) {
        const creds = await db
          .selectFrom('credential')
          .select('identity_id')
          .where('id', 'in', credIds)
          .where('valid_to', 'is', null)
          .execute()
        for (const c of creds) if (c.identity_id) candidateIds.add(c.identity_id)
      }
      const createdBy = await db
        .selectFrom('identity')
        .select('id')
        .where('valid_to', 'is', null)
        .where('created_by', 'in', refs)
        .execute()
      for (const r of createdBy) candidateIds.add(r.id)

      // Identities that inherit ownership from a candidate parent (runs_as, can_assume, delegated_to).
      let frontier = [...candidateIds]
      for (let depth = 0; depth < 4 && frontier.length > 0; depth++) {
        const next: string[] = []
        for (let i = 0; i < frontier.length; i += 2000) {
          const part = frontier.slice(i, i + 2000)
          const children = await db
            .selectFrom('edge')
            .select(['from_id', 'to_id', 'edge_type'])
            .where('valid_to', 'is', null)
            .where((eb) =>
              eb.or([
                eb.and([eb('edge_type', '=', 'runs_as'), eb('to_id', 'in', part)]),
                eb.and([
                  eb('edge_type', 'in', ['can_assume', 'delegated_to']),
                  eb('from_id', 'in', part),
                ]),
              ]),
            )
            .execute()
          for (const c of children) {
            const child = c.edge_type === 'runs_as' ? c.from_id : c.to_id
            if (!candidateIds.has(child)) {
              candidateIds.add(child)
              next.push(child)
            }
          }
        }
        frontier = next
      }
      const identities = candidateIds.size
        ? await db
            .selectFrom('identity')
            .select([
              'id',
              'ref',
              'name',
              'kind',
              'owner_ref',
              'created_by',
              'attributes',
              'source',
              'state',
              'last_used_at',
            ])
            .where('id', 'in', [...candidateIds])
            .where('valid_to', 'is', null)
            .execute()
        : []
      const resolved = await resolver().resolveMany(
        identities.map((i) => ({
          ...i,
          attributes: (i.attributes ?? {}) as Record<string, unknown>,
        })),
      )
      const owned: Array<{ row: (typeof identities)[number]; o: Ownership }> = []
      resolved.forEach((o, i) => {
        if (o.owner && mine.has(o.owner.ref)) owned.push({ row: identities[i]!, o })
      })
      const ids = owned.map((x) => x.row.id)
      const creds = ids.length
        ? await db
            .selectFrom('credential')
            .select([
              'id',
              'ref',
              'identity_id',
              'credential_type',
              'expires_at',
              'created_at',
              'last_rotated_at',
            ])
            .where('identity_id', 'in', ids)
            .where('valid_to', 'is', null)
            .execute()
        : []
      const findings = await findingsFor([...ids, ...creds.map((c) => c.id)])
      const now = clock.now().getTime()
      const list: OwnedIdentity[] = owned.map(({ row: r, o }) => {
        const mineCreds = creds.filter((c) => c.identity_id === r.id)
        const fs = [
          ...(findings.get(r.id) ?? []),
          ...mineCreds.flatMap((c) => findings.get(c.id) ?? []),
        ]
        const since = (c: (typeof creds)[number]) => c.last_rotated_at ?? c.created_at
        return {
          id: r.id,
          ref: r.ref,
          name: r.name,
          kind: r.kind,
          source: r.source,
          state: r.state,
          via: `${o.evidence[0]!.step}: ${o.evidence[0]!.detail}`,
          confidence: o.confidence,
          owner: o.owner!.ref,
          lastUsedAt: iso(r.last_used_at),
          credentials: mineCreds.map((c) => ({
            ref: c.ref,
            type: c.credential_type,
            expiresAt: iso(c.expires_at),
            lastRotatedAt: iso(c.last_rotated_at),
            ageDays:
              since(c) === null
                ? null
                : Math.floor((now - new Date(since(c)!).getTime()) / 86_400_000),
          })),
          findings: fs,
          risk: fs.reduce((n, f) => n + (severityWeight[f.severity] ?? 0), 0),
        }
      })
      list.sort((a, b) => b.risk - a.risk || a.name.localeCompare(b.name))
      const rank = (s: string) => severityOrder.indexOf(s as (typeof severityOrder)[number])
      const fixFirst = list
        .flatMap((i) => i.findings.map((f) => ({ ...f, identity: i.ref, risk: i.risk })))
        .sort(
          (a, b) =>
            rank(a.severity) - rank(b.severity) || b.risk - a.risk || a.rule.localeCompare(b.rule),
        )
        .map(({ risk: _risk, ...f }) => f)
      const bySeverity: Record<string, number> = Object.fromEntries(
        severityOrder.map((s) => [s, 0]),
      )
      for (const f of fixFirst) bySeverity[f.severity] = (bySeverity[f.severity] ?? 0) + 1
      return {
        generatedAt: clock.now().toISOString(),
        owner: {
          ref: row.ref,
          name: row.name,
          ownerType: row.owner_type,
          status: row.status,
          teams,
        },
        totals: {
          identities: list.length,
          credentials: list.reduce((n, i) => n + i.credentials.length, 0),
          openFindings: fixFirst.length,
          bySeverity,
        },
        identities: list,
        fixFirst,
      }
    },

    async compliance() {
      const now = clock.now()
      const kinds = await db
        .selectFrom('identity')
        .select(['kind', (eb) => eb.fn.countAll<string>().as('n')])
        .where('valid_to', 'is', null)
        .groupBy('kind')
        .execute()
      const sources = await db
        .selectFrom('identity')
        .select(['source', (eb) => eb.fn.countAll<string>().as('n')])
        .where('valid_to', 'is', null)
        .groupBy('source')
        .execute()
      const byKind: Record<string, number> = Object.fromEntries(
        kinds.map((k): [string, number] => [k.kind, Number(k.n)]).sort(),
      )
      const bySource: Record<string, number> = Object.fromEntries(
        sources.map((k): [string, number] => [k.source, Number(k.n)]).sort(),
      )
      const total = Object.values(byKind).reduce((a, b) => a + b, 0)

      const coverage = { owned: 0, orphaned: 0, departedOwner: 0, unknownOwner: 0, percent: 0 }
      for await (const page of resolver().resolveAll(5000)) {
        for (const o of page) {
          if (o.orphaned) {
            coverage.orphaned++
            if (o.orphanReason === 'owner-departed') coverage.departedOwner++
          } else {
            coverage.owned++
            if (o.owner?.status === 'unknown') coverage.unknownOwner++
          }
        }
      }
      coverage.percent = total === 0 ? 100 : Math.round((coverage.owned / total) * 1000) / 10

      const ages = await sql<{ days: number | null; rotated: boolean; recent: boolean }>`
        select extract(epoch from ${now.toISOString()}::timestamptz - coalesce(last_rotated_at, created_at))::float8 / 86400 as days,
          last_rotated_at is not null as rotated,
          coalesce(last_rotated_at > ${now.toISOString()}::timestamptz - interval '90 days', false) as recent
        from credential where valid_to is null and state = 'active' and credential_type = any(${staticTypes}::text[])
      `.execute(db)
      const buckets = keyAgeBuckets.map(([bucket]) => ({ bucket, count: 0 }))
      const unknown = { bucket: 'unknown', count: 0 }
      let everRotated = 0
      let recent = 0
      for (const r of ages.rows) {
        if (r.rotated) everRotated++
        if (r.recent) recent++
        if (r.days === null) {
          unknown.count++
          continue
        }
        const i = keyAgeBuckets.findIndex(([, max]) => r.days! < max)
        buckets[i]!.count++
      }
      const staticCount = ages.rows.length

      const sev = await db
        .selectFrom('finding')
        .select(['severity', (eb) => eb.fn.countAll<string>().as('n')])
        .where('status', '=', 'open')
        .groupBy('severity')
        .execute()
      const rules = await db
        .selectFrom('finding')
        .select(['rule', (eb) => eb.fn.countAll<string>().as('n')])
        .where('status', '=', 'open')
        .groupBy('rule')
        .execute()
      const accepted = await db
        .selectFrom('finding')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('status', '=', 'accepted')
        .executeTakeFirst()
      const bySeverity: Record<string, number> = Object.fromEntries(
        severityOrder.map((s) => [s, 0]),
      )
      for (const s of sev) bySeverity[s.severity] = Number(s.n)
      return {
        generatedAt: now.toISOString(),
        identities: { total, byKind, bySource },
        ownerCoverage: coverage,
        keyAge: { buckets: [...buckets, unknown], staticCredentials: staticCount },
        rotation: {
          staticCredentials: staticCount,
          everRotated,
          rotatedWithin90Days: recent,
          percent: staticCount === 0 ? 100 : Math.round((everRotated / staticCount) * 1000) / 10,
        },
        findings: {
          open: Object.values(bySeverity).reduce((a, b) => a + b, 0),
          bySeverity,
          byRule: Object.fromEntries(
            rules.map((r): [string, number] => [r.rule, Number(r.n)]).sort(),
          ),
          accepted: Number(accepted?.n ?? 0),
        },
      }
    },
  }
}
