import { sql } from 'kysely'
import type { EventSink } from '../../audit/event-sink.js'
import type { Entries } from '../../entries/entry-types.js'
import { TesseraError } from '../../errors.js'
import type { FindingInput, FindingReporter, Severity } from '../../posture/finding-types.js'
import { systemClock, type Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import {
  workloadsFromIssuance,
  workloadsFromKubernetes,
  type ObservedWorkload,
} from './observed.js'

/**
 * Reconciliation: desired state (registration entries, identities and credentials declared in a
 * registry source) against observed state (workloads seen running, cloud and Kubernetes listings
 * from discovery). Each kind of drift is a finding rule:
 *
 * - `drift-entry-without-workload`: an entry older than `staleHours` whose SPIFFE ID got no SVID
 *   and matched no observed workload in the last `staleHours`;
 * - `drift-workload-unregistered`: a workload running that no entry covers (an SVID issued for a
 *   SPIFFE ID with no entry, a Kubernetes workload or a reported workload no entry's selectors
 *   match);
 * - `drift-selector-mismatch`: a reported workload running as a SPIFFE ID whose entries all ask for
 *   selectors it does not attest with;
 * - `drift-credential-unregistered`: a credential a cloud listing shows that neither it nor its
 *   identity was ever declared in a registry source;
 * - `drift-identity-gone-from-cloud`: a declared identity its cloud no longer lists.
 */
export const driftRules = [
  'drift-entry-without-workload',
  'drift-workload-unregistered',
  'drift-selector-mismatch',
  'drift-credential-unregistered',
  'drift-identity-gone-from-cloud',
] as const
export type DriftRule = (typeof driftRules)[number]

export interface Drift extends FindingInput {
  rule: DriftRule
}

export interface ReconcileOptions {
  /** An entry with no workload for this long is stale (default 24). */
  staleHours?: number
  /** Delete stale entries (each deletion audited as `reconcile.cleanup`). */
  cleanup?: boolean
  /** Workloads agents reported (selectors as attested); enables the selector check. */
  reported?: readonly ObservedWorkload[]
  /** Sources that declare desired identities and credentials (exact name or kind before `:`). */
  registrySources?: readonly string[]
  /** Kinds of source that list a cloud or cluster (the part before `:` of the source name). */
  cloudKinds?: readonly string[]
}

export interface ReconcileReport {
  at: string
  drift: Drift[]
  counts: Record<DriftRule, number>
  cleaned: { entryId: string; spiffeId: string }[]
  observed: { issuance: number; kubernetes: number; reported: number }
}

export interface ReconcileDeps {
  store: Pick<Store, 'db'>
  clock?: Clock
  findings?: FindingReporter
  events?: EventSink
  /** For cleanup: the server's entries service (so agents and the mirror see the delete). */
  entries?: Pick<Entries, 'delete'>
}

export const defaultRegistrySources = ['registry', 'import', 'cmdb', 'tessera:entries']
export const defaultCloudKinds = ['aws', 'gcp', 'azure', 'k8s', 'kubernetes']

const severity: Record<DriftRule, Severity> = {
  'drift-entry-without-workload': 'low',
  'drift-workload-unregistered': 'medium',
  'drift-selector-mismatch': 'high',
  'drift-credential-unregistered': 'medium',
  'drift-identity-gone-from-cloud': 'medium',
}

interface EntryRow {
  id: string
  spiffe_id: string
  parent_id: string
  selectors: { type: string; value: string }[] | string
  owner_ref: string
  created_at: Date | string
}

/** `k8s:ns:prod` → `k8s:ns`; `unix:uid:1000` → `unix:uid`: the part a workload source can know. */
const selectorKey = (s: string) => s.split(':').slice(0, 2).join(':')

/** Whether an entry's selectors all hold for a workload (on the selector types it can compare). */
export function entryCovers(entrySelectors: readonly string[], w: ObservedWorkload): boolean {
  const have = new Set(w.selectors)
  const comparable = w.comparableTypes
  const relevant = comparable
    ? entrySelectors.filter((s) => comparable.includes(selectorKey(s)))
    : entrySelectors
  if (relevant.length === 0) return false
  return relevant.every((s) => have.has(s))
}

export async function reconcile(
  deps: ReconcileDeps,
  options: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const clock = deps.clock ?? systemClock
  const db = deps.store.db
  const staleHours = options.staleHours ?? 24
  if (!Number.isFinite(staleHours) || staleHours <= 0 || staleHours > 24 * 3650) {
    throw new TesseraError('TSR_VALIDATION', 'staleHours must be a positive number of hours')
  }
  if (options.cleanup && !deps.entries) {
    throw new TesseraError('TSR_CONFIG', 'cleanup needs the entries service')
  }
  const now = clock.now()
  const since = new Date(now.getTime() - staleHours * 3_600_000)
  const registry = [...(options.registrySources ?? defaultRegistrySources)]
  const clouds = [...(options.cloudKinds ?? defaultCloudKinds)]
  const reported = options.reported ?? []

  const entryRows = await sql<EntryRow>`
    select e.id, e.spiffe_id, e.parent_id, e.selectors, e.owner_ref,
      (select min(h.valid_from) from registration_entry h where h.id = e.id) as created_at
    from registration_entry e
    where e.valid_to is null and not e.deleted
    order by e.spiffe_id, e.id
  `.execute(db)
  const entries = entryRows.rows.map((r) => {
    const list =
      typeof r.selectors === 'string'
        ? (JSON.parse(r.selectors) as EntryRow['selectors'])
        : r.selectors
    return {
      id: r.id,
      spiffeId: r.spiffe_id,
      parentId: r.parent_id,
      ownerRef: r.owner_ref,
      createdAt: new Date(r.created_at),
      selectors: (Array.isArray(list) ? list : []).map((s) => `${s.type}:${s.value}`).sort(),
    }
  })
  const agentIds = new Set(
    (await db.selectFrom('agent').select('spiffe_id').execute()).map((a) => a.spiffe_id),
  )
  const issued = (await workloadsFromIssuance(db, since)).filter((w) => !agentIds.has(w.spiffeId!))
  const k8s = await workloadsFromKubernetes(db)
  const bySpiffe = new Map<string, typeof entries>()
  for (const e of entries) {
    const list = bySpiffe.get(e.spiffeId) ?? []
    list.push(e)
    bySpiffe.set(e.spiffeId, list)
  }

  const drift: Drift[] = []
  const add = (d: Omit<Drift, 'severity'>) => drift.push({ ...d, severity: severity[d.rule] })

  // Entries with no workload.
  const live = new Set<string>()
  for (const w of [...issued, ...reported]) if (w.spiffeId) live.add(w.spiffeId)
  const lastIssued = new Map(issued.map((w) => [w.spiffeId!, w.lastSeenAt]))
  const stale: typeof entries = []
  for (const e of entries) {
    if (e.createdAt > since || live.has(e.spiffeId)) continue
    // A reported workload without a SPIFFE ID but with the entry's selectors is running it.
    if (reported.some((w) => !w.spiffeId && entryCovers(e.selectors, w))) continue
    stale.push(e)
    add({
      rule: 'drift-entry-without-workload',
      subjectType: 'entry',
      subjectId: e.id,
      subjectRef: e.spiffeId,
      ownerRef: e.ownerRef,
      dedupKey: `drift-entry-without-workload:${e.id}`,
      evidence: {
        entryId: e.id,
        parentId: e.parentId,
        selectors: e.selectors,
        createdAt: e.createdAt.toISOString(),
        staleHours,
        lastIssuedAt: lastIssued.get(e.spiffeId) ?? null,
      },
    })
  }

  // Workloads running without a registration, and with other selectors than their entries'.
  for (const w of issued) {
    if (bySpiffe.has(w.spiffeId!)) continue
    add({
      rule: 'drift-workload-unregistered',
      subjectType: 'workload',
      subjectRef: w.ref,
      dedupKey: `drift-workload-unregistered:${w.ref}`,
      evidence: {
        source: w.source,
        why: 'SVIDs were issued for a SPIFFE ID no current entry has',
        node: w.node ?? null,
        lastSeenAt: w.lastSeenAt,
      },
    })
  }
  for (const w of [...k8s, ...reported]) {
    const own = w.spiffeId ? bySpiffe.get(w.spiffeId) : undefined
    if (own) {
      if (w.source !== 'agent-report' || own.some((e) => entryCovers(e.selectors, w))) continue
      add({
        rule: 'drift-selector-mismatch',
        subjectType: 'workload',
        subjectRef: w.spiffeId!,
        dedupKey: `drift-selector-mismatch:${w.spiffeId}:${w.node ?? ''}`,
        evidence: {
          node: w.node ?? null,
          attested: w.selectors,
          entries: own.map((e) => ({
            id: e.id,
            selectors: e.selectors,
            missing: e.selectors.filter((s) => !w.selectors.includes(s)),
          })),
          lastSeenAt: w.lastSeenAt,
        },
      })
      continue
    }
    if (w.spiffeId === undefined && entries.some((e) => entryCovers(e.selectors, w))) continue
    add({
      rule: 'drift-workload-unregistered',
      subjectType: 'workload',
      subjectRef: w.ref,
      dedupKey: `drift-workload-unregistered:${w.ref}`,
      evidence: {
        source: w.source,
        why: w.spiffeId
          ? 'runs as a SPIFFE ID no current entry has'
          : 'no entry selects it by its selectors',
        node: w.node ?? null,
        selectors: w.selectors,
        lastSeenAt: w.lastSeenAt,
      },
    })
  }

  // Cloud listings against the registry.
  const isRegistry = (col: ReturnType<typeof sql.ref>) =>
    sql`(${col} = any(${registry}::text[]) or split_part(${col}, ':', 1) = any(${registry}::text[]))`
  const isCloud = (col: ReturnType<typeof sql.ref>) =>
    sql`split_part(${col}, ':', 1) = any(${clouds}::text[])`
  const creds = await sql<{
    id: string
    ref: string
    source: string
    identity_ref: string | null
    credential_type: string
  }>`
    select c.id, c.ref, c.source, c.identity_ref, c.credential_type from credential c
    where c.valid_to is null and ${isCloud(sql.ref('c.source'))}
      and not exists (select 1 from credential h where h.id = c.id and ${isRegistry(sql.ref('h.source'))})
      and not exists (select 1 from identity i where i.id = c.identity_id and ${isRegistry(sql.ref('i.source'))})
    order by c.ref
  `.execute(db)
  for (const c of creds.rows) {
    add({
      rule: 'drift-credential-unregistered',
      subjectType: 'credential',
      subjectId: c.id,
      subjectRef: c.ref,
      dedupKey: `drift-credential-unregistered:${c.id}`,
      evidence: {
        source: c.source,
        identityRef: c.identity_ref,
        credentialType: c.credential_type,
      },
    })
  }
  // A declared identity whose last version came from a cloud listing and was closed by it.
  const gone = await sql<{
    id: string
    ref: string
    source: string
    valid_to: Date | string
    owner_ref: string | null
  }>`
    select i.id, i.ref, i.source, i.valid_to, i.owner_ref from identity i
    where i.valid_to is not null and ${isCloud(sql.ref('i.source'))}
      and i.valid_from = (select max(x.valid_from) from identity x where x.id = i.id)
      and not exists (select 1 from identity o where o.id = i.id and o.valid_to is null)
      and exists (select 1 from identity r where r.id = i.id and ${isRegistry(sql.ref('r.source'))})
    order by i.ref
  `.execute(db)
  // A declared identity its cloud has not listed in a full run since it was declared.
  const unseen = await sql<{
    id: string
    ref: string
    source: string
    run_source: string
    run_at: Date | string
    owner_ref: string | null
  }>`
    select i.id, i.ref, i.source, run.source as run_source, run.started_at as run_at, i.owner_ref
    from identity i
    join lateral (
      select d.source, d.started_at from discovery_run d
      where d.scope = 'full' and d.status = 'succeeded' and d.started_at > i.valid_from
        and ${isCloud(sql.ref('d.source'))}
        and split_part(d.source, ':', 1) = (case
          when i.ref like 'arn:aws%' then 'aws'
          when i.ref like 'k8s:%' then split_part(d.source, ':', 1)
          when i.ref like '%.iam.gserviceaccount.com' then 'gcp'
          else '-' end)
        and (i.ref not like 'k8s:%' or d.source in ('k8s:' || split_part(i.ref, ':', 2), 'kubernetes:' || split_part(i.ref, ':', 2)))
      order by d.started_at desc limit 1
    ) run on true
    where i.valid_to is null and ${isRegistry(sql.ref('i.source'))}
      and not exists (
        select 1 from identity c where c.id = i.id and ${isCloud(sql.ref('c.source'))}
          and c.last_seen_at >= run.started_at)
    order by i.ref
  `.execute(db)
  for (const g of gone.rows) {
    add({
      rule: 'drift-identity-gone-from-cloud',
      subjectType: 'identity',
      subjectId: g.id,
      subjectRef: g.ref,
      ...(g.owner_ref ? { ownerRef: g.owner_ref } : {}),
      dedupKey: `drift-identity-gone-from-cloud:${g.id}`,
      evidence: { cloudSource: g.source, goneAt: new Date(g.valid_to).toISOString() },
    })
  }
  for (const u of unseen.rows) {
    add({
      rule: 'drift-identity-gone-from-cloud',
      subjectType: 'identity',
      subjectId: u.id,
      subjectRef: u.ref,
      ...(u.owner_ref ? { ownerRef: u.owner_ref } : {}),
      dedupKey: `drift-identity-gone-from-cloud:${u.id}`,
      evidence: {
        declaredBy: u.source,
        cloudSource: u.run_source,
        notListedSince: new Date(u.run_at).toISOString(),
      },
    })
  }

  const cleaned: ReconcileReport['cleaned'] = []
  if (options.cleanup && deps.entries) {
    for (const e of stale) {
      await deps.entries.delete(e.id, { actor: 'reconcile' })
      cleaned.push({ entryId: e.id, spiffeId: e.spiffeId })
      await deps.events?.append({
        type: 'reconcile.cleanup',
        actor: 'reconcile',
        subject: e.spiffeId,
        action: 'entry.delete',
        data: { entryId: e.id, reason: `no workload for ${staleHours} h`, selectors: e.selectors },
      })
    }
  }

  if (deps.findings) {
    for (const rule of driftRules) {
      // Without agent reports the selector check saw nothing, which is not "no mismatch".
      const complete = rule !== 'drift-selector-mismatch' || options.reported !== undefined
      await deps.findings.report(
        rule,
        drift.filter((d) => d.rule === rule),
        { complete },
      )
    }
  }

  const counts = Object.fromEntries(driftRules.map((r) => [r, 0])) as Record<DriftRule, number>
  for (const d of drift) counts[d.rule]++
  return {
    at: now.toISOString(),
    drift,
    counts,
    cleaned,
    observed: { issuance: issued.length, kubernetes: k8s.length, reported: reported.length },
  }
}
