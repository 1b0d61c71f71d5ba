import { sql } from 'kysely'
import type { Store } from '../store/index.js'
import type { Severity } from './finding-types.js'

export interface RiskScoreView {
  identityId: string
  identityRef: string
  owner: string | null
  score: number
  findings: number
  maxSeverity: Severity
  blastRadius: number
  computedAt: string
}

/** How far `can_assume` is followed when counting what an identity can reach. */
export const blastRadiusDepth = 3

/**
 * Rewrites the risk score of every identity with open findings:
 *   score = Σ severity weight of its open findings × (1 + log10(1 + blast radius))
 * with weights critical 10, high 6, medium 3, low 1, info 0. The blast radius is the number of
 * resources it can reach: its grants and those of identities it can assume (up to 3 hops); a grant
 * on `*` counts every resource of the grant's source. Findings about a credential weigh on the
 * identity it authenticates.
 */
export async function computeRiskScores(store: Store, now: Date): Promise<number> {
  return store.transaction(async (tx) => {
    await sql`delete from risk_score`.execute(tx.db)
    const r = await sql`
      insert into risk_score (identity_id, identity_ref, owner_ref, score, findings, max_severity,
        blast_radius, computed_at)
      with recursive f as (
        select identity_id, count(*) as n,
          sum(case severity when 'critical' then 10 when 'high' then 6 when 'medium' then 3
            when 'low' then 1 else 0 end) as w,
          max(case severity when 'critical' then 4 when 'high' then 3 when 'medium' then 2
            when 'low' then 1 else 0 end) as top
        from finding where status = 'open' and identity_id is not null
        group by identity_id
      ),
      reach (root, id, depth) as (
        select identity_id, identity_id, 0 from f
        union
        select r.root, e.to_id, r.depth + 1
        from reach r
        join edge e on e.from_id = r.id and e.edge_type = 'can_assume' and e.valid_to is null
        where r.depth < ${blastRadiusDepth}
      ),
      reached as (select distinct root, id from reach),
      per_source as (
        select source, count(*) as n from resource where valid_to is null group by source
      ),
      blast as (
        select x.root,
          count(distinct g.resource_id) filter (where g.resource_ref <> '*')
            + coalesce(sum(ps.n) filter (where g.resource_ref = '*'), 0) as n
        from reached x
        join "grant" g on g.identity_id = x.id and g.valid_to is null
        left join per_source ps on ps.source = g.source and g.resource_ref = '*'
        group by x.root
      )
      select f.identity_id, i.ref, i.owner_ref,
        round((f.w * (1 + log(1 + coalesce(b.n, 0))))::numeric, 2)::double precision,
        f.n,
        case f.top when 4 then 'critical' when 3 then 'high' when 2 then 'medium'
          when 1 then 'low' else 'info' end,
        coalesce(b.n, 0), ${now.toISOString()}::timestamptz
      from f
      join identity i on i.id = f.identity_id and i.valid_to is null
      left join blast b on b.root = f.identity_id`.execute(tx.db)
    return Number(r.numAffectedRows ?? 0)
  })
}

export async function listRiskScores(
  store: Store,
  options: { owner?: string; limit?: number } = {},
): Promise<RiskScoreView[]> {
  let q = store.db.selectFrom('risk_score').selectAll()
  if (options.owner !== undefined) q = q.where('owner_ref', '=', options.owner)
  const rows = await q
    .orderBy('score', 'desc')
    .orderBy('identity_ref')
    .limit(options.limit ?? 100)
    .execute()
  return rows.map((r) => ({
    identityId: r.identity_id,
    identityRef: r.identity_ref,
    owner: r.owner_ref,
    score: Number(r.score),
    findings: Number(r.findings),
    maxSeverity: r.max_severity,
    blastRadius: Number(r.blast_radius),
    computedAt: new Date(r.computed_at).toISOString(),
  }))
}
