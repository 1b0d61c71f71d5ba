import { sql, type Kysely, type RawBuilder } from 'kysely'
import { TesseraError } from '../errors.js'
import type { CredentialLocationRow, Database, EdgeRow, EdgeType } from '../store/index.js'
import { edgeRef, entityId } from './ids.js'
import {
  linkTypes,
  type EdgeView,
  type Graph,
  type GraphNode,
  type LinkType,
  type NeighbourhoodOptions,
} from './inventory-types.js'
import type { NodeType } from './observation.js'
import { candidateIds, checkDate, checkLimit } from './queries.js'
import { edgeView, iso, locationView, validAt } from './views.js'

/**
 * Breadth-first walk of the identity graph. Besides the stored `edge` facts it follows the links
 * that other facts imply, reported as edges of these types:
 *
 * - `uses_credential`: identity → credential (a credential's `identity`)
 * - `credential_found_in`: credential → location (a location's `credential`)
 * - `owns`: owner → identity (an identity's `owner`)
 * - `has_grant`: identity → resource (a grant; the edge id is the grant's id). Not `can_assume`,
 *   which is reserved for real trust relations, so trust-path queries never confuse the two.
 *
 * An implicit link other than a grant has the id a stored edge of the same type and ends would have,
 * so a connector that also reports it as an edge shows up once. `edgeTypes` filters both kinds.
 * Each level costs five queries whatever its width; node details cost one query per node type.
 */

const maxDepth = 6
const maxNodes = 10_000
const knownLinkTypes: ReadonlySet<string> = new Set(linkTypes)

interface NodeRef {
  type: NodeType
  id: string
  ref: string
}

export async function neighbourhood(
  db: Kysely<Database>,
  idOrRef: string,
  options: NeighbourhoodOptions = {},
): Promise<Graph | undefined> {
  const depth = checkRange(options.depth, 2, 1, maxDepth, 'depth')
  const limit = checkLimit(options.limit, 500, maxNodes)
  const at = checkDate(options.at, 'at')
  const allow = new Set<LinkType>(options.edgeTypes ?? linkTypes)
  for (const t of allow) {
    if (!knownLinkTypes.has(t)) {
      throw new TesseraError('TSR_VALIDATION', `unknown edge type ${String(t)}`, {
        details: { field: 'edgeTypes' },
      })
    }
  }
  if (typeof idOrRef !== 'string' || idOrRef === '') return undefined
  const start = await resolveStart(db, idOrRef, at)
  if (!start) return undefined

  const reached = new Map<string, NodeRef & { depth: number }>([[start.id, { ...start, depth: 0 }]])
  const edges = new Map<string, EdgeView>()
  let frontier: NodeRef[] = [start]
  let truncated = false
  for (let d = 1; d <= depth && frontier.length > 0 && !truncated; d++) {
    const links = await linksOf(db, frontier, at, allow)
    const next: NodeRef[] = []
    for (const link of links) {
      for (const end of [link.from, link.to]) {
        if (reached.has(end.id)) continue
        if (reached.size >= limit) {
          truncated = true
          continue
        }
        const node = { type: end.type, id: end.id, ref: end.ref }
        reached.set(end.id, { ...node, depth: d })
        next.push(node)
      }
      if (reached.has(link.from.id) && reached.has(link.to.id)) edges.set(link.id, link)
    }
    frontier = next
  }

  const described = await describe(db, [...reached.values()], at)
  const nodes: GraphNode[] = [...reached.values()].map((n) => {
    const d = described.get(n.id)
    return {
      id: n.id,
      type: n.type,
      ref: n.ref,
      label: d?.label ?? n.ref,
      depth: n.depth,
      // A reference to a fact nobody has observed (yet) is still a node, marked as such.
      attributes: d?.attributes ?? { observed: false },
    }
  })
  nodes.sort(
    (a, b) => a.depth - b.depth || a.type.localeCompare(b.type) || a.label.localeCompare(b.label),
  )
  return { root: start.id, nodes, edges: [...edges.values()], truncated }
}

function checkRange(
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
  field: string,
): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TesseraError('TSR_VALIDATION', `${field} must be an integer from ${min} to ${max}`, {
      details: { field },
    })
  }
  return value
}

async function resolveStart(
  db: Kysely<Database>,
  idOrRef: string,
  at: Date | undefined,
): Promise<NodeRef | undefined> {
  const tables: [NodeType, string][] = [
    ['identity', 'identity'],
    ['credential', 'credential'],
    ['owner', 'owner'],
    ['resource', 'resource'],
    ['location', 'credential_location'],
  ]
  const parts = tables.map(
    ([type, table]) => sql`
      select ${type}::text as type, t.id, t.ref from ${sql.table(table)} t
      where t.id = any(${candidateIds(type, idOrRef)}::uuid[]) and ${validAt('t', at)}`,
  )
  const rows = await sql<NodeRef>`${sql.join(parts, sql` union all `)}`.execute(db)
  // An exact id beats a ref; then the order of `tables`.
  const exact = rows.rows.find((r) => r.id === idOrRef.toLowerCase())
  return exact ?? rows.rows[0]
}

function link(
  edgeType: EdgeType,
  from: NodeRef,
  to: NodeRef,
  source: string,
  id = entityId('edge', edgeRef(edgeType, from, to)),
): EdgeView {
  return { id, edgeType, from, to, source }
}

/** Every link touching the frontier, explicit and implied, in a stable order. */
async function linksOf(
  db: Kysely<Database>,
  frontier: readonly NodeRef[],
  at: Date | undefined,
  allow: ReadonlySet<LinkType>,
): Promise<EdgeView[]> {
  const ids = (type: NodeType) => frontier.filter((n) => n.type === type).map((n) => n.id)
  const all = frontier.map((n) => n.id)
  const identities = ids('identity')
  const credentials = ids('credential')
  const locations = ids('location')
  const resources = ids('resource')
  const ownerRefs = frontier.filter((n) => n.type === 'owner').map((n) => n.ref)
  const anyOf = (
    col: string,
    values: string[],
    cast: 'uuid' | 'text' = 'uuid',
  ): RawBuilder<unknown> =>
    cast === 'uuid'
      ? sql`${sql.ref(col)} = any(${values}::uuid[])`
      : sql`${sql.ref(col)} = any(${values}::text[])`
  const out: EdgeView[] = []
  const work: Promise<void>[] = []

  work.push(
    sql<EdgeRow>`
      select * from edge e
      where (${anyOf('e.from_id', all)} or ${anyOf('e.to_id', all)}) and ${validAt('e', at)}
        and e.edge_type = any(${[...allow]}::text[])
    `
      .execute(db)
      .then((r) => {
        for (const row of r.rows) out.push(edgeView(row))
      }),
  )
  if (allow.has('uses_credential') && (identities.length > 0 || credentials.length > 0)) {
    work.push(
      sql<{ id: string; ref: string; identity_id: string; identity_ref: string; source: string }>`
        select c.id, c.ref, c.identity_id, c.identity_ref, c.source from credential c
        where (${anyOf('c.identity_id', identities)} or ${anyOf('c.id', credentials)})
          and c.identity_id is not null and ${validAt('c', at)}
      `
        .execute(db)
        .then((r) => {
          for (const c of r.rows) {
            out.push(
              link(
                'uses_credential',
                { type: 'identity', id: c.identity_id, ref: c.identity_ref },
                { type: 'credential', id: c.id, ref: c.ref },
                c.source,
              ),
            )
          }
        }),
    )
  }
  if (allow.has('credential_found_in') && (credentials.length > 0 || locations.length > 0)) {
    work.push(
      sql<{
        id: string
        ref: string
        credential_id: string
        credential_ref: string
        source: string
      }>`
        select l.id, l.ref, l.credential_id, l.credential_ref, l.source from credential_location l
        where (${anyOf('l.credential_id', credentials)} or ${anyOf('l.id', locations)})
          and ${validAt('l', at)}
      `
        .execute(db)
        .then((r) => {
          for (const l of r.rows) {
            out.push(
              link(
                'credential_found_in',
                { type: 'credential', id: l.credential_id, ref: l.credential_ref },
                { type: 'location', id: l.id, ref: l.ref },
                l.source,
              ),
            )
          }
        }),
    )
  }
  if (allow.has('has_grant') && (identities.length > 0 || resources.length > 0)) {
    work.push(
      sql<{
        id: string
        identity_id: string
        identity_ref: string
        resource_id: string
        resource_ref: string
        source: string
      }>`
        select g.id, g.identity_id, g.identity_ref, g.resource_id, g.resource_ref, g.source
        from "grant" g
        where (${anyOf('g.identity_id', identities)} or ${anyOf('g.resource_id', resources)})
          and ${validAt('g', at)}
      `
        .execute(db)
        .then((r) => {
          for (const g of r.rows) {
            out.push({
              id: g.id,
              edgeType: 'has_grant',
              from: { type: 'identity', id: g.identity_id, ref: g.identity_ref },
              to: { type: 'resource', id: g.resource_id, ref: g.resource_ref },
              source: g.source,
            })
          }
        }),
    )
  }
  if (allow.has('owns') && (identities.length > 0 || ownerRefs.length > 0)) {
    work.push(
      sql<{ id: string; ref: string; owner_ref: string; source: string }>`
        select i.id, i.ref, i.owner_ref, i.source from identity i
        where (${anyOf('i.id', identities)} or ${anyOf('i.owner_ref', ownerRefs, 'text')})
          and i.owner_ref is not null and ${validAt('i', at)}
      `
        .execute(db)
        .then((r) => {
          for (const i of r.rows) {
            out.push(
              link(
                'owns',
                { type: 'owner', id: entityId('owner', i.owner_ref), ref: i.owner_ref },
                { type: 'identity', id: i.id, ref: i.ref },
                i.source,
              ),
            )
          }
        }),
    )
  }
  await Promise.all(work)
  out.sort((a, b) => a.edgeType.localeCompare(b.edgeType) || a.id.localeCompare(b.id))
  return out
}

interface Description {
  label: string
  attributes: Record<string, unknown>
}

/** Labels and a few telling fields for each reached node: one query per node type present. */
async function describe(
  db: Kysely<Database>,
  nodes: readonly NodeRef[],
  at: Date | undefined,
): Promise<Map<string, Description>> {
  const out = new Map<string, Description>()
  const ids = (type: NodeType) => nodes.filter((n) => n.type === type).map((n) => n.id)
  const q = async <R extends { id: string }>(
    type: NodeType,
    table: string,
    each: (r: R) => Description,
  ) => {
    const wanted = ids(type)
    if (wanted.length === 0) return
    const rows = await sql<R>`
      select * from ${sql.table(table)} t where t.id = any(${wanted}::uuid[]) and ${validAt('t', at)}
    `.execute(db)
    for (const r of rows.rows) out.set(r.id, each(r))
  }
  await Promise.all([
    q<{
      id: string
      name: string
      kind: string
      state: string
      source: string
      owner_ref: string | null
    }>('identity', 'identity', (r) => ({
      label: r.name,
      attributes: { kind: r.kind, state: r.state, source: r.source, owner: r.owner_ref },
    })),
    q<{
      id: string
      ref: string
      preview: string | null
      credential_type: string
      state: string
      expires_at: Date | null
      source: string
    }>('credential', 'credential', (r) => ({
      label: r.preview ? `${r.credential_type} ${r.preview}` : r.ref,
      attributes: {
        credentialType: r.credential_type,
        state: r.state,
        expiresAt: iso(r.expires_at),
        source: r.source,
      },
    })),
    q<{ id: string; name: string; owner_type: string; status: string; email: string | null }>(
      'owner',
      'owner',
      (r) => ({
        label: r.name,
        attributes: { ownerType: r.owner_type, status: r.status, email: r.email },
      }),
    ),
    q<{ id: string; name: string; resource_type: string; environment: string | null }>(
      'resource',
      'resource',
      (r) => ({
        label: r.name,
        attributes: { resourceType: r.resource_type, environment: r.environment },
      }),
    ),
    q<CredentialLocationRow>('location', 'credential_location', (r) => {
      const { id: _id, source: _source, ...attributes } = locationView(r)
      return { label: locationLabel(r), attributes: { ...attributes } }
    }),
  ])
  return out
}

function locationLabel(r: {
  location_type: string
  repository: string | null
  file: string | null
  line: number | null
  host: string | null
  path: string | null
}): string {
  const where = [r.host, r.repository, r.file].filter((p) => p).join(':')
  const line = r.line === null ? '' : `:${r.line}`
  const path = r.path ? (where ? ` ${r.path}` : r.path) : ''
  return `${r.location_type} ${where}${line}${path}`.trim()
}
