import { TesseraError } from '../../errors.js'
import { systemClock, type Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import { entityId, isUuid } from '../ids.js'
import type { IngestResult, Inventory } from '../inventory-types.js'
import type { CodeownersSource } from './codeowners.js'
import { parseOwnerCsv } from './owner-csv.js'
import { toOwnerObservation, type OwnerRecord } from './owner-records.js'
import {
  createOwnershipResolver,
  type Ownership,
  type OwnershipResolver,
  type OwnershipStep,
} from './ownership.js'
import { parseScimDocument } from './scim.js'

export interface OwnerView {
  id: string
  ref: string
  ownerType: 'person' | 'team'
  name: string
  email: string | null
  status: 'active' | 'departed' | 'suspended'
  team: string | null
  teams: string[]
  source: string
  since: string
  attributes: Record<string, unknown>
}

export interface OwnerImportResult extends IngestResult {
  people: number
  teams: number
  departed: number
  /** Group members that matched no person in the file. */
  unmatchedMembers: string[]
}

export interface AssignmentView {
  identityId: string
  identityRef: string
  owner: string
  reason: string | null
  assignedBy: string | null
  since: string
}

export interface OwnerFilter {
  type?: 'person' | 'team'
  status?: 'active' | 'departed' | 'suspended'
  team?: string
  limit?: number
  /** The last ref of the previous page. */
  after?: string
}

export interface Owners {
  /** SCIM JSON (`scim`) or CSV (`csv`); `auto` looks at the first character. */
  importText(
    text: string,
    options?: { format?: 'scim' | 'csv' | 'auto'; source?: string },
  ): Promise<OwnerImportResult>
  importRecords(records: readonly OwnerRecord[], source: string): Promise<IngestResult>
  list(filter?: OwnerFilter): Promise<{ items: OwnerView[]; nextAfter?: string }>
  get(idOrRef: string): Promise<OwnerView | undefined>
  /** Explicit ownership: closes the previous assignment and opens this one. */
  assign(
    identity: string,
    owner: string,
    options?: { by?: string; reason?: string },
  ): Promise<AssignmentView>
  ownership(identity: string): Promise<Ownership | undefined>
  /** Stores a repository's CODEOWNERS file for the `codeowners` step. */
  setCodeowners(repository: string, content: string): Promise<void>
  readonly resolver: OwnershipResolver
}

export interface OwnersDeps {
  store: Store
  inventory: Pick<Inventory, 'ingest'>
  clock?: Clock
  codeowners?: CodeownersSource
  order?: readonly OwnershipStep[]
}

export const maxCodeownersBytes = 512 * 1024

type OwnerRow = {
  id: string
  ref: string
  owner_type: 'person' | 'team'
  name: string
  email: string | null
  status: 'active' | 'departed' | 'suspended'
  team_ref: string | null
  source: string
  valid_from: Date
  attributes: unknown
}

export function toOwnerView(r: OwnerRow): OwnerView {
  const attributes = (r.attributes ?? {}) as Record<string, unknown>
  const teams = Array.isArray(attributes.teams)
    ? attributes.teams.filter((t): t is string => typeof t === 'string')
    : r.team_ref
      ? [r.team_ref]
      : []
  return {
    id: r.id,
    ref: r.ref,
    ownerType: r.owner_type,
    name: r.name,
    email: r.email,
    status: r.status,
    team: r.team_ref,
    teams,
    source: r.source,
    since: new Date(r.valid_from).toISOString(),
    attributes,
  }
}

export const ownerColumns = [
  'id',
  'ref',
  'owner_type',
  'name',
  'email',
  'status',
  'team_ref',
  'source',
  'valid_from',
  'attributes',
] as const

/**
 * People and teams (imported facts in the `owner` table, through the inventory's ingestion, so a
 * departure is a new version and nothing is deleted) and explicit ownership assignments.
 */
export function createOwners(deps: OwnersDeps): Owners {
  const clock = deps.clock ?? systemClock
  const db = deps.store.db
  const resolver = createOwnershipResolver({
    db,
    ...(deps.codeowners ? { codeowners: deps.codeowners } : {}),
    ...(deps.order ? { order: deps.order } : {}),
  })

  async function currentOwners(refs: readonly string[]): Promise<Map<string, OwnerView>> {
    if (refs.length === 0) return new Map()
    const rows = await db
      .selectFrom('owner')
      .select([...ownerColumns])
      .where(
        'id',
        'in',
        refs.map((r) => entityId('owner', r)),
      )
      .where('valid_to', 'is', null)
      .execute()
    return new Map(rows.map((r) => [r.ref, toOwnerView(r)]))
  }

  /** A departure keeps the instant it was first seen; a return clears it. */
  async function departureStamps(
    records: readonly OwnerRecord[],
  ): Promise<Map<string, Record<string, unknown>>> {
    const current = await currentOwners(records.map((r) => r.ref))
    const out = new Map<string, Record<string, unknown>>()
    const now = clock.now().toISOString()
    for (const r of records) {
      if (r.status !== 'departed') continue
      const was = current.get(r.ref)
      const departedAt =
        was?.status === 'departed' && typeof was.attributes.departedAt === 'string'
          ? was.attributes.departedAt
          : now
      out.set(r.ref, { departedAt })
    }
    return out
  }

  async function importRecords(
    records: readonly OwnerRecord[],
    source: string,
  ): Promise<IngestResult> {
    const stamps = await departureStamps(records)
    const observations = records.map((r) => toOwnerObservation(r, source, stamps.get(r.ref)))
    return deps.inventory.ingest(observations)
  }

  return {
    resolver,
    importRecords,
    async importText(text, options = {}) {
      const format =
        options.format === undefined || options.format === 'auto'
          ? /^\s*[[{]/.test(text.replace(/^\ufeff/, ''))
            ? 'scim'
            : 'csv'
          : options.format
      let records: OwnerRecord[]
      let unmatchedMembers: string[] = []
      if (format === 'scim') {
        let doc: unknown
        try {
          doc = JSON.parse(text.replace(/^\ufeff/, ''))
        } catch (err) {
          throw new TesseraError(
            'TSR_IMPORT_FILE',
            `the SCIM file is not JSON: ${(err as Error).message}`,
          )
        }
        const parsed = parseScimDocument(doc)
        records = [...parsed.groups.map((g) => g.team), ...parsed.people]
        unmatchedMembers = parsed.unmatchedMembers
      } else records = parseOwnerCsv(text)
      const result = await importRecords(records, options.source ?? format)
      return {
        ...result,
        people: records.filter((r) => r.ownerType === 'person').length,
        teams: records.filter((r) => r.ownerType === 'team').length,
        departed: records.filter((r) => r.status === 'departed').length,
        unmatchedMembers,
      }
    },
    async list(filter = {}) {
      const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000)
      let q = db
        .selectFrom('owner')
        .select([...ownerColumns])
        .where('valid_to', 'is', null)
      if (filter.type) q = q.where('owner_type', '=', filter.type)
      if (filter.status) q = q.where('status', '=', filter.status)
      if (filter.team) q = q.where('team_ref', '=', filter.team)
      if (filter.after) q = q.where('ref', '>', filter.after)
      const rows = await q
        .orderBy('ref')
        .limit(limit + 1)
        .execute()
      const items = rows.slice(0, limit).map(toOwnerView)
      return rows.length > limit ? { items, nextAfter: items[items.length - 1]!.ref } : { items }
    },
    async get(idOrRef) {
      const id = isUuid(idOrRef) ? idOrRef.toLowerCase() : entityId('owner', idOrRef)
      const row = await db
        .selectFrom('owner')
        .select([...ownerColumns])
        .where('id', '=', id)
        .where('valid_to', 'is', null)
        .executeTakeFirst()
      return row ? toOwnerView(row) : undefined
    },
    async assign(identity, owner, options = {}) {
      if (typeof owner !== 'string' || owner.trim() === '' || owner.length > 512) {
        throw new TesseraError('TSR_VALIDATION', 'owner must be a ref of 1 to 512 characters', {
          details: { field: 'owner' },
        })
      }
      if (options.reason !== undefined && options.reason.length > 500) {
        throw new TesseraError('TSR_VALIDATION', 'reason is at most 500 characters')
      }
      const id = isUuid(identity) ? identity.toLowerCase() : entityId('identity', identity)
      const row = await db
        .selectFrom('identity')
        .select(['id', 'ref'])
        .where('id', '=', id)
        .where('valid_to', 'is', null)
        .executeTakeFirst()
      if (!row) throw new TesseraError('TSR_NOT_FOUND', `no identity ${identity}`)
      const ownerRef = owner.trim()
      const known = await currentOwners([ownerRef])
      const o = known.get(ownerRef)
      if (!o) {
        throw new TesseraError(
          'TSR_NOT_FOUND',
          `no owner ${ownerRef}: import people and teams first`,
          {
            details: { field: 'owner' },
          },
        )
      }
      if (o.status === 'departed') {
        throw new TesseraError(
          'TSR_VALIDATION',
          `${ownerRef} has departed; assign an active owner`,
          {
            details: { field: 'owner' },
          },
        )
      }
      const now = clock.now()
      await deps.store.transaction(async (tx) => {
        const current = await tx.db
          .selectFrom('owner_assignment')
          .select(['version_id', 'owner_ref'])
          .where('identity_id', '=', row.id)
          .where('valid_to', 'is', null)
          .forUpdate()
          .executeTakeFirst()
        if (current) {
          await tx.db
            .updateTable('owner_assignment')
            .set({ valid_to: now })
            .where('version_id', '=', current.version_id)
            .execute()
        }
        await tx.db
          .insertInto('owner_assignment')
          .values({
            identity_id: row.id,
            identity_ref: row.ref,
            owner_ref: ownerRef,
            reason: options.reason ?? null,
            assigned_by: options.by ?? null,
            valid_from: now,
          })
          .execute()
      })
      return {
        identityId: row.id,
        identityRef: row.ref,
        owner: ownerRef,
        reason: options.reason ?? null,
        assignedBy: options.by ?? null,
        since: now.toISOString(),
      }
    },
    ownership: (identity) => resolver.resolve(identity),
    async setCodeowners(repository, content) {
      if (typeof repository !== 'string' || repository === '' || repository.length > 1024) {
        throw new TesseraError('TSR_VALIDATION', 'repository must be 1 to 1024 characters')
      }
      if (Buffer.byteLength(content) > maxCodeownersBytes) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `a CODEOWNERS file is at most ${maxCodeownersBytes} bytes`,
        )
      }
      const now = clock.now()
      await db
        .insertInto('codeowners_file')
        .values({ repository, content, updated_at: now })
        .onConflict((oc) => oc.column('repository').doUpdateSet({ content, updated_at: now }))
        .execute()
    },
  }
}
