import { sql, type Kysely } from 'kysely'
import type { Database } from '../../store/index.js'
import type { FindingInput } from '../finding-types.js'
import type { PostureRule, RuleContext } from '../rule-types.js'

/** Identity kinds trusted least by default: outside code, pipelines, bots and agents. */
export const defaultLowTrustKinds = ['ci_pipeline', 'oauth_app', 'api_client', 'bot', 'ai_agent']

type NodeType = 'identity' | 'credential' | 'resource'

/** How one node reaches the next on the way to a crown jewel. */
type Hop = 'grant' | 'can_assume' | 'uses_credential' | 'authenticates' | 'holds'

interface Visit {
  type: NodeType
  ref: string
  depth: number
  /** The next node towards the crown jewel, and how; absent on a crown jewel. */
  next?: string
  hop?: Hop
}

interface Pred {
  from_id: string
  from_type: NodeType
  from_ref: string
  to_id: string
  hop: Hop
}

const batch = 5000

/** `arn:aws:s3:::prod-*` → a LIKE pattern (`*` any run, `?` one character; `%` and `_` literal). */
export function globToLike(glob: string): string {
  return glob
    .replace(/[\\%_]/g, (c) => '\\' + c)
    .replace(/\*/g, '%')
    .replace(/\?/g, '_')
}

/**
 * Walks backwards from the crown jewels, level by level (one set-based query per level and
 * batch), over the links an attacker follows forwards:
 *   identity →grant→ resource; resource (a repository) →holds→ credential found in it
 *   (`credential_found_in`); credential →authenticates→ its identity; identity →uses_credential→
 *   credential; identity →can_assume→ identity.
 * Each node keeps its nearest next hop, so the path from any reached node is read off directly.
 * Low-trust identities reached this way are findings, with the path as evidence.
 */
export async function findTrustPaths(
  db: Kysely<Database>,
  ctx: RuleContext,
  maxDepth: number,
): Promise<FindingInput[]> {
  const patterns = (ctx.config.crownJewels ?? []).map(globToLike)
  const jewels = await sql<{ id: string; ref: string }>`
    select r.id, r.ref from resource r
    where r.valid_to is null and (
      r.ref like any (array(select jsonb_array_elements_text(${JSON.stringify(patterns)}::jsonb)))
      or lower(coalesce(r.attributes ->> 'crownJewel', '')) = 'true')`.execute(db)
  const visited = new Map<string, Visit>()
  let frontier: string[] = []
  for (const j of jewels.rows) {
    visited.set(j.id, { type: 'resource', ref: j.ref, depth: 0 })
    frontier.push(j.id)
  }
  for (let depth = 1; depth <= maxDepth && frontier.length > 0; depth++) {
    const next: string[] = []
    const byType: Record<NodeType, string[]> = { identity: [], credential: [], resource: [] }
    for (const id of frontier) byType[visited.get(id)!.type].push(id)
    for (const [type, ids] of Object.entries(byType) as [NodeType, string[]][]) {
      for (let i = 0; i < ids.length; i += batch) {
        const preds = await predecessors(db, type, ids.slice(i, i + batch))
        for (const p of preds) {
          if (visited.has(p.from_id)) continue
          visited.set(p.from_id, {
            type: p.from_type,
            ref: p.from_ref,
            depth,
            next: p.to_id,
            hop: p.hop,
          })
          next.push(p.from_id)
        }
      }
    }
    frontier = next
  }
  const identityIds = [...visited].filter(([, v]) => v.type === 'identity').map(([id]) => id)
  const lowKinds = JSON.stringify(ctx.config.lowTrustKinds ?? defaultLowTrustKinds)
  const out: FindingInput[] = []
  for (let i = 0; i < identityIds.length; i += batch) {
    const ids = JSON.stringify(identityIds.slice(i, i + batch))
    const low = await sql<{
      id: string
      ref: string
      kind: string
      owner_ref: string | null
      why: string
    }>`
      select i.id, i.ref, i.kind, i.owner_ref,
        case when i.kind in (select jsonb_array_elements_text(${lowKinds}::jsonb)) then 'kind'
          when lower(coalesce(i.attributes ->> 'trust', '')) = 'low' then 'attribute'
          else 'leaked-credential' end as why
      from identity i
      where i.valid_to is null and i.state = 'active'
        and i.id in (select jsonb_array_elements_text(${ids}::jsonb)::uuid)
        and (i.kind in (select jsonb_array_elements_text(${lowKinds}::jsonb))
          or lower(coalesce(i.attributes ->> 'trust', '')) = 'low'
          or exists (select 1 from credential c join credential_location l
              on l.credential_id = c.id and l.valid_to is null
              and l.location_type in ('git', 'file', 'url')
            where c.identity_id = i.id and c.valid_to is null and c.state = 'active'))`.execute(db)
    for (const r of low.rows) {
      const path: Array<{ type: NodeType; ref: string; hop?: Hop }> = []
      let id: string | undefined = r.id
      while (id !== undefined) {
        const v: Visit = visited.get(id)!
        path.push({ type: v.type, ref: v.ref, ...(v.hop ? { hop: v.hop } : {}) })
        id = v.next
      }
      const jewel = path[path.length - 1]!
      out.push({
        rule: 'trust-path-crown-jewel',
        severity: 'critical',
        subjectType: 'identity',
        subjectId: r.id,
        subjectRef: r.ref,
        ...(r.owner_ref ? { ownerRef: r.owner_ref } : {}),
        evidence: {
          kind: r.kind,
          lowTrustBecause: r.why,
          crownJewel: jewel.ref,
          hops: path.length - 1,
          path,
        },
      })
    }
  }
  return out
}

async function predecessors(db: Kysely<Database>, type: NodeType, ids: string[]): Promise<Pred[]> {
  const list = sql`(select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb)::uuid)`
  let q
  if (type === 'resource') {
    q = sql<Pred>`
      select g.identity_id as from_id, 'identity' as from_type, g.identity_ref as from_ref,
        g.resource_id as to_id, 'grant' as hop
      from "grant" g where g.valid_to is null and g.resource_id in ${list}`
  } else if (type === 'credential') {
    q = sql<Pred>`
      select e.from_id, 'identity' as from_type, e.from_ref, e.to_id, 'uses_credential' as hop
      from edge e where e.valid_to is null and e.edge_type = 'uses_credential'
        and e.from_type = 'identity' and e.to_id in ${list}
      union all
      select e.to_id, 'resource', e.to_ref, e.from_id, 'holds'
      from edge e where e.valid_to is null and e.edge_type = 'credential_found_in'
        and e.to_type = 'resource' and e.from_id in ${list}`
  } else {
    q = sql<Pred>`
      select e.from_id, 'identity' as from_type, e.from_ref, e.to_id, 'can_assume' as hop
      from edge e where e.valid_to is null and e.edge_type = 'can_assume'
        and e.from_type = 'identity' and e.to_id in ${list}
      union all
      select c.id, 'credential', c.ref, c.identity_id, 'authenticates'
      from credential c where c.valid_to is null and c.state = 'active'
        and c.identity_id in ${list}`
  }
  // Sorted so that which of two equally near paths a node keeps does not depend on plan order.
  const r = await sql<Pred>`select * from (${q}) p order by p.from_id, p.to_id, p.hop`.execute(db)
  return r.rows
}

export const trustPathCrownJewel: PostureRule = {
  id: 'trust-path-crown-jewel',
  severity: 'critical',
  title: 'Trust path from a low-trust identity to a crown jewel',
  description:
    'A low-trust identity (a CI pipeline, OAuth app, API client, bot or AI agent by default; `trust: low`; or one with a leaked credential) can reach a crown-jewel resource through grants, role assumption (`can_assume`), credentials it uses (`uses_credential`) and credentials it can read where they were found (`credential_found_in`). The shortest path is the evidence.',
  remediation:
    'Break the path at its weakest link: remove the secret from the repository and rotate it, narrow the grant or the trust policy that allows the assumption, or move the low-trust identity away from what leads to the crown jewel.',
  thresholds: { maxDepth: { default: 6, description: 'longest path followed, in hops' } },
  evaluate: (db, ctx) => findTrustPaths(db, ctx, ctx.threshold('maxDepth')),
}
