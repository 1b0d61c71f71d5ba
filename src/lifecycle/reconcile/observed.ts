import { sql } from 'kysely'
import { TesseraError } from '../../errors.js'
import type { Store } from '../../store/store.js'

/**
 * A workload seen running, from whichever source saw it:
 * - `issuance`: SVIDs minted for a SPIFFE ID through an agent (the server's own records: a
 *   workload that fetched an SVID was running on that node then);
 * - `kubernetes`: workloads (Deployments, pods…) from Kubernetes discovery runs in the inventory,
 *   with the namespace and service-account selectors they would attest with;
 * - `agent-report`: what agents report of the workloads they attested (selectors as attested),
 *   in the JSON form `parseAgentReport` reads.
 */
export interface ObservedWorkload {
  source: 'issuance' | 'kubernetes' | 'agent-report'
  /** A stable reference for findings: the SPIFFE ID, or the inventory ref, or agent + pid. */
  ref: string
  spiffeId?: string
  /** The node: an agent id or SPIFFE ID, or a cluster. */
  node?: string
  /** `type:value` selectors as attested (e.g. `k8s:ns:prod`, `unix:uid:1000`). */
  selectors: string[]
  /** Only these selector types are known for this workload (others cannot be compared). */
  comparableTypes?: string[]
  lastSeenAt: string
}

/** SPIFFE IDs that received an SVID since `since`, per agent, with the latest issuance. */
export async function workloadsFromIssuance(
  db: Store['db'],
  since: Date,
): Promise<ObservedWorkload[]> {
  const rows = await sql<{
    spiffe_id: string
    agent_id: string | null
    last: Date | string
  }>`
    select spiffe_id, agent_id::text as agent_id, max(issued_at) as last from issuance
    where issued_at >= ${since.toISOString()}::timestamptz
    group by spiffe_id, agent_id
    order by spiffe_id, agent_id
  `.execute(db)
  return rows.rows.map((r) => ({
    source: 'issuance',
    ref: r.spiffe_id,
    spiffeId: r.spiffe_id,
    ...(r.agent_id ? { node: r.agent_id } : {}),
    selectors: [],
    comparableTypes: [],
    lastSeenAt: new Date(r.last).toISOString(),
  }))
}

/**
 * Kubernetes workloads in the inventory (open versions from a Kubernetes source), with the
 * `k8s:ns:` and `k8s:sa:` selectors a pod of theirs attests with (the service account through the
 * `runs_as` edge).
 */
export async function workloadsFromKubernetes(db: Store['db']): Promise<ObservedWorkload[]> {
  const rows = await sql<{
    ref: string
    source: string
    namespace: string | null
    last_seen_at: Date | string
    sa_name: string | null
  }>`
    select w.ref, w.source, w.attributes->>'namespace' as namespace, w.last_seen_at, sa.name as sa_name
    from identity w
    left join edge e on e.from_id = w.id and e.edge_type = 'runs_as' and e.valid_to is null
    left join identity sa on sa.id = e.to_id and sa.valid_to is null
    where w.valid_to is null and w.kind = 'workload' and w.ref like 'k8s:%:workload:%'
    order by w.ref
  `.execute(db)
  return rows.rows.map((r) => {
    const sa = r.sa_name ? /^system:serviceaccount:[^:]+:(.+)$/.exec(r.sa_name)?.[1] : undefined
    const selectors = [
      ...(r.namespace ? [`k8s:ns:${r.namespace}`] : []),
      ...(sa ? [`k8s:sa:${sa}`] : []),
    ]
    return {
      source: 'kubernetes',
      ref: r.ref,
      node: r.source,
      selectors,
      comparableTypes: ['k8s:ns', 'k8s:sa'],
      lastSeenAt: new Date(r.last_seen_at).toISOString(),
    }
  })
}

/**
 * An agent's report of what it attested: `{"agent": ID, "at": ISO, "workloads": [{"spiffeId"?,
 * "selectors": ["unix:uid:1000", …]}]}`, or a list of those. Throws TSR_VALIDATION naming the
 * first bad field.
 */
export function parseAgentReport(value: unknown): ObservedWorkload[] {
  const reports = Array.isArray(value) ? value : [value]
  const out: ObservedWorkload[] = []
  reports.forEach((rep: unknown, i) => {
    const at = `reports[${i}]`
    if (typeof rep !== 'object' || rep === null) {
      throw new TesseraError('TSR_VALIDATION', `${at} must be an object`)
    }
    const r = rep as Record<string, unknown>
    const agent = typeof r.agent === 'string' && r.agent.length > 0 ? r.agent : undefined
    if (!agent) throw new TesseraError('TSR_VALIDATION', `${at}.agent is required`)
    const when = typeof r.at === 'string' && !Number.isNaN(Date.parse(r.at)) ? r.at : undefined
    if (!when) throw new TesseraError('TSR_VALIDATION', `${at}.at must be an ISO 8601 instant`)
    if (!Array.isArray(r.workloads)) {
      throw new TesseraError('TSR_VALIDATION', `${at}.workloads must be a list`)
    }
    r.workloads.forEach((w: unknown, j) => {
      const wat = `${at}.workloads[${j}]`
      if (typeof w !== 'object' || w === null) {
        throw new TesseraError('TSR_VALIDATION', `${wat} must be an object`)
      }
      const o = w as Record<string, unknown>
      const selectors = o.selectors
      if (
        !Array.isArray(selectors) ||
        selectors.some((s) => typeof s !== 'string' || !/^[^:\s]+:.+$/.test(s) || s.length > 512)
      ) {
        throw new TesseraError('TSR_VALIDATION', `${wat}.selectors must be a list of TYPE:VALUE`)
      }
      const spiffeId =
        typeof o.spiffeId === 'string' && o.spiffeId.startsWith('spiffe://')
          ? o.spiffeId
          : undefined
      out.push({
        source: 'agent-report',
        ref: spiffeId ?? `${agent}:${[...(selectors as string[])].sort().join(',')}`,
        ...(spiffeId ? { spiffeId } : {}),
        node: agent,
        selectors: [...new Set(selectors as string[])].sort(),
        lastSeenAt: new Date(when).toISOString(),
      })
    })
  })
  return out
}
