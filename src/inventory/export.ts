import { sql, type Kysely } from 'kysely'
import type {
  CredentialLocationRow,
  CredentialRow,
  Database,
  EdgeRow,
  FactTable,
  GrantRow,
  IdentityRow,
  OwnerRow,
  ResourceRow,
  UsageRow,
} from '../store/index.js'
import { writeOrder } from './facts.js'
import type {
  CredentialObservation,
  LocationObservation,
  NodeType,
  Observation,
} from './observation.js'
import { checkDate } from './queries.js'
import { iso, validAt } from './views.js'

/** Rows per page read; a page is one keyset query, so memory stays flat however big the store. */
export const exportPageSize = 1000

/**
 * Every fact valid now (or at `at`) as observations, table by table in id order, then usage rows
 * (hours up to `at`). `observedAt` is the version's `valid_from`, so importing the export into an
 * empty store reproduces the same ids, content hashes and validity starts.
 */
export async function* exportObservations(
  db: Kysely<Database>,
  options: { at?: Date } = {},
): AsyncGenerator<Observation> {
  const at = checkDate(options.at, 'at')
  for (const table of writeOrder) {
    let after: string | undefined
    for (;;) {
      const page = await sql<Record<string, unknown>>`
        select * from ${sql.table(table)} t
        where ${validAt('t', at)} ${after === undefined ? sql`` : sql`and t.id > ${after}::uuid`}
        order by t.id limit ${exportPageSize}
      `.execute(db)
      for (const row of page.rows) yield toObservation(table, row)
      if (page.rows.length < exportPageSize) break
      after = page.rows[page.rows.length - 1]!.id as string
    }
  }
  let afterId = 0
  for (;;) {
    const page = await sql<UsageRow>`
      select * from usage u
      where u.id > ${afterId}
        ${at === undefined ? sql`` : sql`and u.hour <= ${at.toISOString()}::timestamptz`}
      order by u.id limit ${exportPageSize}
    `.execute(db)
    for (const u of page.rows) {
      yield {
        type: 'usage',
        source: u.source,
        identity: u.identity_ref,
        resource: u.resource_ref,
        action: u.action,
        hour: iso(u.hour)!,
        count: u.count,
      }
    }
    if (page.rows.length < exportPageSize) break
    afterId = Number(page.rows[page.rows.length - 1]!.id)
  }
}

/** Drops null and undefined members, so optional fields are absent rather than null. */
function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) {
    if (o[k] === null || o[k] === undefined) delete o[k]
  }
  return o
}

function base(row: { source: string; valid_from: Date; attributes: unknown }) {
  const attributes = (
    typeof row.attributes === 'string' ? JSON.parse(row.attributes) : row.attributes
  ) as Record<string, unknown>
  return {
    source: row.source,
    observedAt: iso(row.valid_from)!,
    ...(attributes && Object.keys(attributes).length > 0 ? { attributes } : {}),
  }
}

function toObservation(table: FactTable, raw: Record<string, unknown>): Observation {
  switch (table) {
    case 'identity': {
      const r = raw as unknown as IdentityRow
      return compact({
        type: 'identity',
        ...base(r),
        ref: r.ref,
        kind: r.kind,
        name: r.name,
        owner: r.owner_ref ?? undefined,
        createdBy: r.created_by ?? undefined,
        state: r.state as 'active',
        createdAt: iso(r.created_at) ?? undefined,
        lastUsedAt: iso(r.last_used_at) ?? undefined,
      })
    }
    case 'credential': {
      const r = raw as unknown as CredentialRow
      return compact({
        type: 'credential',
        ...base(r),
        ref: r.ref,
        identity: r.identity_ref ?? undefined,
        credentialType: r.credential_type as CredentialObservation['credentialType'],
        fingerprint: r.fingerprint ?? undefined,
        preview: r.preview ?? undefined,
        issuer: r.issuer ?? undefined,
        createdAt: iso(r.created_at) ?? undefined,
        expiresAt: iso(r.expires_at) ?? undefined,
        lastRotatedAt: iso(r.last_rotated_at) ?? undefined,
        lastUsedAt: iso(r.last_used_at) ?? undefined,
        state: r.state as CredentialObservation['state'],
      })
    }
    case 'credential_location': {
      const r = raw as unknown as CredentialLocationRow
      return compact({
        type: 'location',
        ...base(r),
        credential: r.credential_ref,
        locationType: r.location_type as LocationObservation['locationType'],
        repository: r.repository ?? undefined,
        file: r.file ?? undefined,
        line: r.line ?? undefined,
        commit: r.commit ?? undefined,
        host: r.host ?? undefined,
        path: r.path ?? undefined,
      })
    }
    case 'owner': {
      const r = raw as unknown as OwnerRow
      return compact({
        type: 'owner',
        ...base(r),
        ref: r.ref,
        ownerType: r.owner_type,
        name: r.name,
        email: r.email ?? undefined,
        status: r.status,
        team: r.team_ref ?? undefined,
      })
    }
    case 'resource': {
      const r = raw as unknown as ResourceRow
      return compact({
        type: 'resource',
        ...base(r),
        ref: r.ref,
        resourceType: r.resource_type,
        name: r.name,
        environment: r.environment ?? undefined,
      })
    }
    case 'grant': {
      const r = raw as unknown as GrantRow
      return compact({
        type: 'grant',
        ...base(r),
        identity: r.identity_ref,
        resource: r.resource_ref,
        actions: r.actions,
        via: r.via ?? undefined,
      })
    }
    case 'edge': {
      const r = raw as unknown as EdgeRow
      return {
        type: 'edge',
        ...base(r),
        edgeType: r.edge_type,
        from: { type: r.from_type as NodeType, ref: r.from_ref },
        to: { type: r.to_type as NodeType, ref: r.to_ref },
      }
    }
  }
}
