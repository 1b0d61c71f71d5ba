import type {
  EdgeView,
  Graph,
  GraphNode,
  IdentityDetail,
  IdentitySummary,
} from '../inventory/inventory-types.js'
import { cleanCell, renderFields, renderTable, truncate, type Column } from './table.js'
import { formatRelative } from './time.js'

/** Human renderings of inventory answers. Pure: data in, text out. */

export function identityColumns(now: Date): Column<IdentitySummary>[] {
  return [
    { header: 'NAME', value: (r) => r.name, maxWidth: 40 },
    { header: 'KIND', value: (r) => r.kind },
    { header: 'SOURCE', value: (r) => r.source, maxWidth: 24 },
    { header: 'OWNER', value: (r) => r.owner, maxWidth: 28 },
    { header: 'STATE', value: (r) => r.state },
    {
      header: 'LAST USED',
      value: (r) => (r.lastUsedAt ? formatRelative(r.lastUsedAt, now) : 'never'),
    },
    { header: 'REF', value: (r) => r.ref, maxWidth: 60, truncate: 'middle' },
  ]
}

export function renderIdentityList(items: readonly IdentitySummary[], now: Date): string {
  if (items.length === 0) return 'no identities\n'
  return renderTable(identityColumns(now), items)
}

const when = (iso: string | null | undefined, now: Date): string | null =>
  iso ? `${iso} (${formatRelative(iso, now)})` : null

export function renderIdentityDetail(d: IdentityDetail, now: Date): string {
  let out = `${cleanCell(d.name)}  [${d.kind}]\n`
  out += renderFields(
    [
      ['id', d.id],
      ['ref', d.ref],
      ['source', d.source],
      ['state', d.state],
      ['owner', d.owner],
      ['created by', d.createdBy],
      ['created', when(d.createdAt, now)],
      ['last used', d.lastUsedAt ? when(d.lastUsedAt, now) : 'never'],
      ['last seen', when(d.lastSeenAt, now)],
      ['valid', `${d.validFrom} → ${d.validTo ?? 'now'}`],
      ...Object.entries(d.attributes ?? {}).map(([k, v]): [string, unknown] => [
        `attr ${k}`,
        typeof v === 'string' ? v : JSON.stringify(v),
      ]),
    ],
    '  ',
  )

  out += `\nOwner\n`
  if (d.ownerDetail) {
    const o = d.ownerDetail
    out += renderFields(
      [
        ['name', `${o.name} (${o.ownerType})`],
        ['ref', o.ref],
        ['email', o.email ?? undefined],
        ['status', o.status],
        ['team', o.team ?? undefined],
      ],
      '  ',
    )
  } else {
    out += d.owner ? `  ${cleanCell(d.owner)} (no owner record)\n` : '  none\n'
  }

  out += `\nCredentials (${d.credentials.length})\n`
  for (const c of d.credentials) {
    out += `  ${cleanCell(c.credentialType)}  ${cleanCell(truncate(c.ref, 60, 'middle'))}  ${cleanCell(c.state)}\n`
    out += renderFields(
      [
        ['preview', c.preview ?? undefined],
        ['fingerprint', c.fingerprint ? truncate(c.fingerprint, 40, 'middle') : undefined],
        ['issuer', c.issuer ?? undefined],
        ['created', when(c.createdAt, now) ?? undefined],
        ['expires', c.expiresAt ? when(c.expiresAt, now) : 'never'],
        ['rotated', when(c.lastRotatedAt, now) ?? undefined],
        ['last used', c.lastUsedAt ? when(c.lastUsedAt, now) : 'never'],
      ],
      '      ',
    )
    for (const l of c.locations) out += `      found in  ${describeLocation(l)}\n`
  }

  out += `\nGrants (${d.grants.length})\n`
  if (d.grants.length > 0) {
    out += indent(
      renderTable(
        [
          {
            header: 'RESOURCE',
            value: (g) => g.resourceName ?? g.resource,
            maxWidth: 50,
            truncate: 'middle',
          },
          { header: 'ACTIONS', value: (g) => g.actions.join(','), maxWidth: 40 },
          { header: 'VIA', value: (g) => g.via, maxWidth: 40, truncate: 'middle' },
        ],
        d.grants,
      ),
      '  ',
    )
  }

  out += `\nUsage (${d.usage.length})\n`
  if (d.usage.length > 0) {
    out += indent(
      renderTable(
        [
          { header: 'RESOURCE', value: (u) => u.resource, maxWidth: 50, truncate: 'middle' },
          { header: 'ACTION', value: (u) => u.action },
          { header: 'COUNT', value: (u) => u.count, align: 'right' },
          { header: 'LAST', value: (u) => formatRelative(u.lastHour, now) },
        ],
        d.usage,
      ),
      '  ',
    )
  }

  out += `\nEdges (${d.edges.length})\n`
  for (const e of d.edges) {
    const outgoing = e.from.id === d.id
    const other = outgoing ? e.to : e.from
    out += `  ${outgoing ? '→' : '←'} ${e.edgeType}  ${other.type} ${cleanCell(truncate(other.ref, 70, 'middle'))}\n`
  }
  return out
}

function describeLocation(l: IdentityDetail['credentials'][number]['locations'][number]): string {
  const parts: string[] = [l.locationType]
  if (l.repository) parts.push(l.repository)
  if (l.file) parts.push(l.line === null ? l.file : `${l.file}:${l.line}`)
  if (l.commit) parts.push(`@${l.commit.slice(0, 12)}`)
  if (l.host) parts.push(`host ${l.host}`)
  if (l.path) parts.push(l.path)
  return cleanCell(parts.join(' '))
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l) => (l ? prefix + l : l))
    .join('\n')
}

/**
 * The graph as an indented tree from the root: each node appears once, under the first node that
 * reached it (breadth first, as the walk found it); `→ type` is an edge out of the parent, `← type`
 * one into it. Edges between nodes already placed are listed after the tree.
 */
export function renderGraph(g: Graph): string {
  const nodes = new Map<string, GraphNode>(g.nodes.map((n) => [n.id, n]))
  const adjacent = new Map<string, { edge: EdgeView; other: string; outgoing: boolean }[]>()
  const link = (a: string, entry: { edge: EdgeView; other: string; outgoing: boolean }) => {
    let list = adjacent.get(a)
    if (!list) adjacent.set(a, (list = []))
    list.push(entry)
  }
  for (const e of g.edges) {
    link(e.from.id, { edge: e, other: e.to.id, outgoing: true })
    link(e.to.id, { edge: e, other: e.from.id, outgoing: false })
  }
  const label = (id: string) => {
    const n = nodes.get(id)
    if (!n) return `? ${id}`
    const name = n.label && n.label !== n.ref ? `${n.label}  ` : ''
    return `${n.type} ${cleanCell(name)}${cleanCell(truncate(n.ref, 70, 'middle'))}`
  }
  const placed = new Set<string>([g.root])
  const usedEdges = new Set<string>()
  const children = new Map<string, { edge: EdgeView; other: string; outgoing: boolean }[]>()
  const queue = [g.root]
  while (queue.length > 0) {
    const id = queue.shift()!
    for (const entry of adjacent.get(id) ?? []) {
      if (placed.has(entry.other)) continue
      placed.add(entry.other)
      usedEdges.add(entry.edge.id + '|' + id + '|' + entry.other)
      let list = children.get(id)
      if (!list) children.set(id, (list = []))
      list.push(entry)
      queue.push(entry.other)
    }
  }
  const lines: string[] = [label(g.root)]
  const walk = (id: string, prefix: string) => {
    const list = children.get(id) ?? []
    list.forEach((entry, i) => {
      const last = i === list.length - 1
      const arrow = entry.outgoing ? '→' : '←'
      lines.push(
        `${prefix}${last ? '└─' : '├─'} ${arrow} ${entry.edge.edgeType}  ${label(entry.other)}`,
      )
      walk(entry.other, prefix + (last ? '   ' : '│  '))
    })
  }
  walk(g.root, '')
  const others = g.edges.filter(
    (e) =>
      !usedEdges.has(e.id + '|' + e.from.id + '|' + e.to.id) &&
      !usedEdges.has(e.id + '|' + e.to.id + '|' + e.from.id),
  )
  if (others.length > 0) {
    lines.push('', 'other edges:')
    for (const e of others)
      lines.push(`  ${label(e.from.id)}  → ${e.edgeType} →  ${label(e.to.id)}`)
  }
  const orphans = g.nodes.filter((n) => !placed.has(n.id))
  for (const n of orphans) lines.push(`(unlinked) ${label(n.id)}`)
  lines.push(
    '',
    `${g.nodes.length} nodes, ${g.edges.length} edges${g.truncated ? ' (truncated: raise --limit)' : ''}`,
  )
  return lines.join('\n') + '\n'
}

export function renderStats(stats: Record<string, number>): string {
  const rows = Object.entries(stats).sort(([a], [b]) => a.localeCompare(b))
  return renderTable(
    [
      { header: 'FACT', value: (r: [string, number]) => r[0] },
      {
        header: 'CURRENT',
        value: (r: [string, number]) => r[1].toLocaleString('en-US'),
        align: 'right',
      },
    ],
    rows,
  )
}
