import { sql, type Kysely, type RawBuilder } from 'kysely'
import { TesseraError } from '../errors.js'
import {
  factTables,
  type CredentialLocationRow,
  type CredentialRow,
  type Database,
  type EdgeRow,
  type GrantRow,
  type IdentityRow,
  type OwnerRow,
} from '../store/index.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { entityId, isUuid } from './ids.js'
import type {
  GrantView,
  IdentityDetail,
  IdentityFilter,
  IdentitySummary,
  LocationView,
  Page,
  UsageView,
} from './inventory-types.js'
import {
  credentialView,
  edgeView,
  identitySummary,
  iso,
  locationView,
  ownerView,
  validAt,
} from './views.js'

const defaultLimit = 100
const maxLimit = 1000

export function checkLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined) return fallback
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new TesseraError('TSR_VALIDATION', `limit must be an integer from 1 to ${max}`, {
      details: { field: 'limit' },
    })
  }
  return limit
}

export function checkDate(value: Date | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new TesseraError('TSR_VALIDATION', `${field} must be a valid date`, {
      details: { field },
    })
  }
  return value
}

/** `%`, `_` and the escape character itself are literal in a substring search. */
export function likePattern(q: string): string {
  return '%' + q.replace(/[\\%_]/g, (c) => '\\' + c) + '%'
}

/**
 * How many identities, in name order, a selective filter (`q`, `expiresBefore`) examines before it
 * switches plans. Walking the name index and testing each row finds a page fast when matches are
 * common; when they are rare the walk would read the whole table, so after this many rows the query
 * collects all the matches through their own indexes (trigram, credential expiry) and sorts them.
 */
export const defaultWalkBudget = 10_000

/** How much further the walk goes when it reads only the narrow current-name index. */
const narrowWalkFactor = 10

export async function listIdentities(
  db: Kysely<Database>,
  filter: IdentityFilter = {},
  walkBudget = defaultWalkBudget,
): Promise<Page<IdentitySummary>> {
  const limit = checkLimit(filter.limit, defaultLimit, maxLimit)
  const at = checkDate(filter.at, 'at')
  // Conditions any index on (column, name, id) answers in name order.
  const plain: RawBuilder<unknown>[] = [validAt('i', at)]
  // Conditions tested row by row; each has an index of its own for the rare-match plan.
  const selective: RawBuilder<unknown>[] = []
  if (filter.kind !== undefined) plain.push(sql`i.kind = ${filter.kind}`)
  if (filter.source !== undefined) plain.push(sql`i.source = ${filter.source}`)
  if (filter.owner !== undefined) plain.push(sql`i.owner_ref = ${filter.owner}`)
  if (filter.state !== undefined) plain.push(sql`i.state = ${filter.state}`)
  const unusedSince = checkDate(filter.unusedSince, 'unusedSince')
  if (unusedSince !== undefined) {
    plain.push(
      sql`(i.last_used_at is null or i.last_used_at < ${unusedSince.toISOString()}::timestamptz)`,
    )
  }
  const expiresBefore = checkDate(filter.expiresBefore, 'expiresBefore')
  if (expiresBefore !== undefined) {
    const before = expiresBefore.toISOString()
    // Now: the earliest expiry kept on the current identity (migration 0014). As of a past
    // instant: the credentials valid then.
    selective.push(
      at === undefined
        ? sql`i.next_expires_at < ${before}::timestamptz`
        : sql`exists (
            select 1 from credential c
            where c.identity_id = i.id and ${validAt('c', at)}
              and c.expires_at < ${before}::timestamptz)`,
    )
  }
  if (filter.q !== undefined && filter.q !== '') {
    selective.push(sql`i.name ilike ${likePattern(filter.q)}`)
  }
  if (filter.cursor !== undefined) {
    const after = decodeCursor(filter.cursor)
    plain.push(sql`(i.name, i.id) > (${after.name}, ${after.id}::uuid)`)
  }
  const where = (conds: RawBuilder<unknown>[]) => sql.join(conds, sql` and `)

  // Now, with no filter but the selective ones: the walk reads only identity_current_name (name, id
  // and next expiry), an index-only scan on vacuumed pages, so it can afford to go further.
  const narrowWalk = at === undefined && plain.length === (filter.cursor === undefined ? 1 : 2)
  let rows: IdentityRow[]
  if (selective.length === 0) {
    rows = (
      await sql<IdentityRow>`
        select i.* from identity i where ${where(plain)} order by i.name, i.id limit ${limit + 1}
      `.execute(db)
    ).rows
  } else {
    // Plan 1: walk at most walkBudget rows in name order and test them. The LIMIT inside the
    // subquery keeps the planner from turning the test into a join over every match, and the
    // walk stops as soon as a page is full.
    rows = (
      narrowWalk
        ? await sql<IdentityRow>`
            select i.* from (
              select i.id, i.name from (
                select i.id, i.name, i.next_expires_at from identity i where ${where(plain)}
                order by i.name, i.id limit ${walkBudget * narrowWalkFactor}
              ) i
              where ${where(selective)}
              order by i.name, i.id limit ${limit + 1}
            ) p
            join identity i on i.id = p.id and i.valid_to is null
            order by p.name, p.id
          `.execute(db)
        : await sql<IdentityRow>`
            select i.* from (
              select i.* from identity i where ${where(plain)} order by i.name, i.id limit ${walkBudget}
            ) i
            where ${where(selective)}
            order by i.name, i.id limit ${limit + 1}
          `.execute(db)
    ).rows
    if (rows.length <= limit) {
      // Not a full page within the budget: either there are no more matches, or they are rare.
      // Plan 2 lets their own indexes find them all, then sorts: right in both cases.
      rows = (
        await sql<IdentityRow>`
          select i.* from identity i where ${where([...plain, ...selective])}
          order by i.name, i.id limit ${limit + 1}
        `.execute(db)
      ).rows
    }
  }
  const items = rows.slice(0, limit).map(identitySummary)
  const last = items[items.length - 1]
  return rows.length > limit && last
    ? { items, nextCursor: encodeCursor(last.name, last.id) }
    : { items }
}

/** The ids a caller's "id or ref" can mean for one fact type: the derived id, and itself if a uuid. */
export function candidateIds(type: Parameters<typeof entityId>[0], idOrRef: string): string[] {
  const ids = [entityId(type, idOrRef)]
  if (isUuid(idOrRef)) ids.unshift(idOrRef.toLowerCase())
  return ids
}

export async function getIdentity(
  db: Kysely<Database>,
  idOrRef: string,
  at?: Date,
): Promise<IdentityDetail | undefined> {
  checkDate(at, 'at')
  if (typeof idOrRef !== 'string' || idOrRef === '') return undefined
  const ids = candidateIds('identity', idOrRef)
  const found = await sql<IdentityRow>`
    select * from identity i where i.id = any(${ids}::uuid[]) and ${validAt('i', at)}
  `.execute(db)
  // A ref that happens to be a uuid (a Kubernetes uid) loses to an identity with that very id.
  const row = ids.map((id) => found.rows.find((r) => r.id === id)).find((r) => r !== undefined)
  if (!row) return undefined
  const id = row.id

  const [owner, credentials, grants, usage, edges] = await Promise.all([
    row.owner_ref === null
      ? Promise.resolve(undefined)
      : sql<OwnerRow>`
          select * from owner o where o.id = ${entityId('owner', row.owner_ref)}::uuid
            and ${validAt('o', at)}
        `
          .execute(db)
          .then((r) => r.rows[0]),
    sql<CredentialRow>`
      select * from credential c where c.identity_id = ${id}::uuid and ${validAt('c', at)}
      order by c.ref
    `.execute(db),
    sql<GrantRow & { resource_name: string | null }>`
      select g.*, r.name as resource_name from "grant" g
      left join resource r on r.id = g.resource_id and ${validAt('r', at)}
      where g.identity_id = ${id}::uuid and ${validAt('g', at)}
      order by g.resource_ref, g.via nulls first
    `.execute(db),
    sql<{ resource: string; action: string; count: number; first: Date; last: Date }>`
      select resource_ref as resource, action, sum(count)::float8 as count,
        min(hour) as first, max(hour) as last
      from usage
      where identity_id = ${id}::uuid
        ${at === undefined ? sql`` : sql`and hour <= ${at.toISOString()}::timestamptz`}
      group by resource_ref, action
      order by resource_ref, action
    `.execute(db),
    sql<EdgeRow>`
      select * from edge e
      where (e.from_id = ${id}::uuid or e.to_id = ${id}::uuid) and ${validAt('e', at)}
      order by e.edge_type, e.id
    `.execute(db),
  ])

  const credentialIds = credentials.rows.map((c) => c.id)
  const locations =
    credentialIds.length === 0
      ? []
      : (
          await sql<CredentialLocationRow>`
            select * from credential_location l
            where l.credential_id = any(${credentialIds}::uuid[]) and ${validAt('l', at)}
            order by l.ref
          `.execute(db)
        ).rows
  const byCredential = new Map<string, LocationView[]>()
  for (const l of locations) {
    const list = byCredential.get(l.credential_id) ?? []
    list.push(locationView(l))
    byCredential.set(l.credential_id, list)
  }

  return {
    ...identitySummary(row),
    ownerDetail: owner ? ownerView(owner) : null,
    credentials: credentials.rows.map((c) => credentialView(c, byCredential.get(c.id) ?? [])),
    grants: grants.rows.map((g): GrantView => ({
      id: g.id,
      resource: g.resource_ref,
      resourceName: g.resource_name,
      actions: g.actions,
      via: g.via,
      source: g.source,
    })),
    usage: usage.rows.map((u): UsageView => ({
      resource: u.resource,
      action: u.action,
      count: Number(u.count),
      firstHour: iso(u.first)!,
      lastHour: iso(u.last)!,
    })),
    edges: edges.rows.map(edgeView),
  }
}

/** Current rows per fact table, plus usage rows. */
export async function stats(db: Kysely<Database>): Promise<Record<string, number>> {
  const parts = factTables.map(
    (t) =>
      sql`select ${t}::text as name, count(*)::int as n from ${sql.table(t)} where valid_to is null`,
  )
  parts.push(sql`select 'usage' as name, count(*)::int as n from usage`)
  const rows = await sql<{ name: string; n: number }>`${sql.join(parts, sql` union all `)}`.execute(
    db,
  )
  return Object.fromEntries(rows.rows.map((r) => [r.name, Number(r.n)]))
}
