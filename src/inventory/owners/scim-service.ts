import { sql } from 'kysely'
import { TesseraError } from '../../errors.js'
import type { Store } from '../../store/store.js'
import { entityId, isUuid } from '../ids.js'
import type { OwnerRecord } from './owner-records.js'
import { ownerColumns, toOwnerView, type OwnerView, type Owners } from './owners.js'
import { applyScimPatch } from './scim-patch.js'
import { parseScimGroup, parseScimUser, scimSchemas } from './scim.js'

/**
 * The service behind `/scim/v2/Users` and `/scim/v2/Groups` (RFC 7644): an IdP provisions people and
 * teams. Resource ids are the owners' stable ids. Deprovisioning (`active: false`, DELETE) marks a
 * person departed (a team: dissolved, status departed): owners are never deleted. A team's members
 * are the people whose teams include it; changing a group's members changes those people.
 */
export const scimSource = 'scim'

type Json = Record<string, unknown>

export interface ScimListQuery {
  filter?: string
  /** 1-based (RFC 7644 §3.4.2.4). */
  startIndex?: number
  count?: number
}

export interface ScimListResponse {
  schemas: [typeof scimSchemas.listResponse]
  totalResults: number
  startIndex: number
  itemsPerPage: number
  Resources: Json[]
}

export interface ScimService {
  createUser(body: unknown): Promise<Json>
  getUser(id: string): Promise<Json>
  listUsers(query: ScimListQuery): Promise<ScimListResponse>
  replaceUser(id: string, body: unknown): Promise<Json>
  patchUser(id: string, body: unknown): Promise<Json>
  deleteUser(id: string): Promise<void>
  createGroup(body: unknown): Promise<Json>
  getGroup(id: string): Promise<Json>
  listGroups(query: ScimListQuery): Promise<ScimListResponse>
  replaceGroup(id: string, body: unknown): Promise<Json>
  patchGroup(id: string, body: unknown): Promise<Json>
  deleteGroup(id: string): Promise<void>
}

export const maxScimPage = 500

function notFound(kind: string, id: string): TesseraError {
  return new TesseraError('TSR_NOT_FOUND', `${kind} ${id} not found`)
}

function conflict(what: string): TesseraError {
  return new TesseraError('TSR_CONFLICT', what, { details: { scimType: 'uniqueness' } })
}

function meta(kind: 'User' | 'Group', v: OwnerView): Json {
  return {
    resourceType: kind,
    created: v.since,
    lastModified: v.since,
    location: `/scim/v2/${kind}s/${v.id}`,
  }
}

export function toScimUser(v: OwnerView, groups: Array<{ id: string; ref: string }>): Json {
  const a = v.attributes
  const enterprise: Json = {}
  if (typeof a.costCenter === 'string') enterprise.costCenter = a.costCenter
  if (typeof a.department === 'string') enterprise.department = a.department
  return {
    schemas: [
      scimSchemas.user,
      ...(Object.keys(enterprise).length ? [scimSchemas.enterpriseUser] : []),
    ],
    id: v.id,
    ...(typeof a.externalId === 'string' ? { externalId: a.externalId } : {}),
    userName: typeof a.userName === 'string' ? a.userName : (v.email ?? v.ref),
    displayName: v.name,
    name: { formatted: v.name },
    ...(v.email ? { emails: [{ value: v.email, type: 'work', primary: true }] } : {}),
    active: v.status === 'active',
    groups: groups.map((g) => ({ value: g.id, display: g.ref, $ref: `/scim/v2/Groups/${g.id}` })),
    ...(Object.keys(enterprise).length ? { [scimSchemas.enterpriseUser]: enterprise } : {}),
    meta: meta('User', v),
  }
}

export function toScimGroup(v: OwnerView, members: OwnerView[]): Json {
  return {
    schemas: [scimSchemas.group],
    id: v.id,
    ...(typeof v.attributes.externalId === 'string' ? { externalId: v.attributes.externalId } : {}),
    displayName: v.name,
    members: members.map((m) => ({ value: m.id, display: m.ref, $ref: `/scim/v2/Users/${m.id}` })),
    meta: meta('Group', v),
  }
}

/** `attr eq "value"` (RFC 7644 §3.4.2.2), the form IdPs use to look a resource up. */
export function parseScimFilter(filter: string): { attr: string; value: string } {
  const m = /^\s*([A-Za-z][\w.:-]*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(filter)
  if (!m || filter.length > 1000) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `unsupported filter (only attr eq "value"): ${filter.slice(0, 100)}`,
      {
        details: { scimType: 'invalidFilter' },
      },
    )
  }
  return { attr: m[1]!.toLowerCase(), value: JSON.parse(`"${m[2]!}"`) as string }
}

export function createScimService(deps: { store: Store; owners: Owners }): ScimService {
  const db = deps.store.db

  async function ownerById(id: string, type: 'person' | 'team'): Promise<OwnerView | undefined> {
    if (!isUuid(id)) return undefined
    const row = await db
      .selectFrom('owner')
      .select([...ownerColumns])
      .where('id', '=', id.toLowerCase())
      .where('owner_type', '=', type)
      .where('valid_to', 'is', null)
      .executeTakeFirst()
    return row ? toOwnerView(row) : undefined
  }

  async function membersOf(teamRef: string): Promise<OwnerView[]> {
    const rows = await db
      .selectFrom('owner')
      .select([...ownerColumns])
      .where('valid_to', 'is', null)
      .where('owner_type', '=', 'person')
      .where((eb) =>
        eb.or([eb('team_ref', '=', teamRef), sql<boolean>`attributes->'teams' ? ${teamRef}`]),
      )
      .orderBy('ref')
      .execute()
    return rows.map(toOwnerView)
  }

  async function groupsOf(v: OwnerView): Promise<Array<{ id: string; ref: string }>> {
    return v.teams.map((t) => ({ id: entityId('owner', t), ref: t }))
  }

  function recordOf(v: OwnerView): OwnerRecord {
    const a = v.attributes
    const r: OwnerRecord = { ref: v.ref, ownerType: v.ownerType, name: v.name, status: v.status }
    if (v.email) r.email = v.email
    if (v.team) r.team = v.team
    if (v.teams.length) r.teams = [...v.teams]
    for (const k of [
      'scimId',
      'externalId',
      'userName',
      'costCenter',
      'department',
      'github',
    ] as const) {
      if (typeof a[k] === 'string') r[k] = a[k]
    }
    return r
  }

  async function write(records: OwnerRecord[]): Promise<void> {
    await deps.owners.importRecords(records, scimSource)
  }

  async function putUser(existing: OwnerView | undefined, body: unknown): Promise<Json> {
    const parsed = parseScimUser(body)
    const record: OwnerRecord = existing
      ? {
          ...recordOf(existing),
          name: parsed.name,
          status:
            parsed.status === 'departed' && existing.status === 'suspended'
              ? 'suspended'
              : parsed.status,
        }
      : parsed
    if (existing) {
      // The ref (and so the id) stays; the rest follows the IdP.
      for (const k of ['email', 'externalId', 'userName', 'costCenter', 'department'] as const) {
        if (parsed[k] === undefined) delete record[k]
        else record[k] = parsed[k]
      }
    }
    delete record.scimId
    await write([record])
    return (await userJson(entityId('owner', record.ref)))!
  }

  async function userJson(id: string): Promise<Json | undefined> {
    const v = await ownerById(id, 'person')
    return v ? toScimUser(v, await groupsOf(v)) : undefined
  }

  async function groupJson(id: string): Promise<Json | undefined> {
    const v = await ownerById(id, 'team')
    return v ? toScimGroup(v, await membersOf(v.ref)) : undefined
  }

  /** Member values are our ids; an IdP's own ids and emails are matched too. */
  async function resolveMembers(values: readonly string[]): Promise<OwnerView[]> {
    const out = new Map<string, OwnerView>()
    for (const value of values) {
      const byId = isUuid(value) ? await ownerById(value, 'person') : undefined
      const row =
        byId ??
        (await db
          .selectFrom('owner')
          .select([...ownerColumns])
          .where('valid_to', 'is', null)
          .where('owner_type', '=', 'person')
          .where((eb) =>
            eb.or([
              eb('ref', '=', value.toLowerCase()),
              sql<boolean>`attributes->>'scimId' = ${value}`,
            ]),
          )
          .executeTakeFirst()
          .then((r) => (r ? toOwnerView(r) : undefined)))
      if (!row) {
        throw new TesseraError('TSR_VALIDATION', `member ${value} is no known user`, {
          details: { scimType: 'invalidValue', field: 'members' },
        })
      }
      out.set(row.ref, row)
    }
    return [...out.values()]
  }

  /** Sets a team's membership to exactly `members` (people gain or lose the team). */
  async function setMembers(teamRef: string, members: OwnerView[]): Promise<void> {
    const before = await membersOf(teamRef)
    const want = new Set(members.map((m) => m.ref))
    const changed: OwnerRecord[] = []
    for (const m of members) {
      if (m.teams.includes(teamRef)) continue
      const r = recordOf(m)
      r.teams = [...(r.teams ?? []), teamRef]
      r.team ??= teamRef
      changed.push(r)
    }
    for (const m of before) {
      if (want.has(m.ref)) continue
      const r = recordOf(m)
      r.teams = (r.teams ?? []).filter((t) => t !== teamRef)
      if (r.teams.length > 0) r.team = r.teams[0]!
      else delete r.team
      changed.push(r)
    }
    if (changed.length > 0) await write(changed)
  }

  async function putGroup(existing: OwnerView | undefined, body: unknown): Promise<Json> {
    const parsed = parseScimGroup(body)
    const team: OwnerRecord = existing
      ? { ...recordOf(existing), name: parsed.team.name, status: 'active' }
      : parsed.team
    if (parsed.team.externalId !== undefined) team.externalId = parsed.team.externalId
    delete team.scimId
    await write([team])
    const members = await resolveMembers(parsed.members)
    await setMembers(team.ref, members)
    return (await groupJson(entityId('owner', team.ref)))!
  }

  async function list(type: 'person' | 'team', query: ScimListQuery): Promise<ScimListResponse> {
    const startIndex = Math.max(1, Math.floor(query.startIndex ?? 1))
    const count = Math.min(Math.max(0, Math.floor(query.count ?? 100)), maxScimPage)
    let q = db.selectFrom('owner').where('valid_to', 'is', null).where('owner_type', '=', type)
    if (query.filter !== undefined && query.filter !== '') {
      const f = parseScimFilter(query.filter)
      const v = f.value
      if (f.attr === 'id')
        q = q.where('id', '=', isUuid(v) ? v.toLowerCase() : '00000000-0000-0000-0000-000000000000')
      else if (f.attr === 'externalid') q = q.where(sql<boolean>`attributes->>'externalId' = ${v}`)
      else if (type === 'person' && f.attr === 'username') {
        q = q.where(
          sql<boolean>`(lower(attributes->>'userName') = ${v.toLowerCase()} or ref = ${v.toLowerCase()})`,
        )
      } else if (type === 'person' && (f.attr === 'emails.value' || f.attr === 'emails')) {
        q = q.where('email', '=', v.toLowerCase())
      } else if (type === 'team' && f.attr === 'displayname') {
        q = q.where(sql<boolean>`lower(name) = ${v.toLowerCase()}`)
      } else {
        throw new TesseraError('TSR_VALIDATION', `filtering on ${f.attr} is not supported`, {
          details: { scimType: 'invalidFilter' },
        })
      }
    }
    const total = await q.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
    const rows =
      count === 0
        ? []
        : await q
            .select([...ownerColumns])
            .orderBy('ref')
            .offset(startIndex - 1)
            .limit(count)
            .execute()
    const views = rows.map(toOwnerView)
    const Resources: Json[] = []
    for (const v of views) {
      Resources.push(
        type === 'person'
          ? toScimUser(v, await groupsOf(v))
          : toScimGroup(v, await membersOf(v.ref)),
      )
    }
    return {
      schemas: [scimSchemas.listResponse],
      totalResults: Number(total.n),
      startIndex,
      itemsPerPage: Resources.length,
      Resources,
    }
  }

  async function depart(v: OwnerView): Promise<void> {
    if (v.status === 'departed') return
    await write([{ ...recordOf(v), status: 'departed' }])
  }

  return {
    async createUser(body) {
      const parsed = parseScimUser(body)
      const existing = await ownerById(entityId('owner', parsed.ref), 'person')
      if (existing)
        throw conflict(`a user with userName/email ${parsed.ref} exists (${existing.id})`)
      return putUser(undefined, body)
    },
    async getUser(id) {
      return (await userJson(id)) ?? Promise.reject(notFound('User', id))
    },
    listUsers: (query) => list('person', query),
    async replaceUser(id, body) {
      const existing = await ownerById(id, 'person')
      if (!existing) throw notFound('User', id)
      return putUser(existing, body)
    },
    async patchUser(id, body) {
      const existing = await ownerById(id, 'person')
      if (!existing) throw notFound('User', id)
      const current = toScimUser(existing, await groupsOf(existing))
      const patched = applyScimPatch(current, body)
      return putUser(existing, patched)
    },
    async deleteUser(id) {
      const existing = await ownerById(id, 'person')
      if (!existing) throw notFound('User', id)
      await depart(existing)
    },
    async createGroup(body) {
      const parsed = parseScimGroup(body)
      const existing = await ownerById(entityId('owner', parsed.team.ref), 'team')
      if (existing && existing.status !== 'departed') {
        throw conflict(`a group named ${parsed.team.name} exists (${existing.id})`)
      }
      return putGroup(existing, body)
    },
    async getGroup(id) {
      return (await groupJson(id)) ?? Promise.reject(notFound('Group', id))
    },
    listGroups: (query) => list('team', query),
    async replaceGroup(id, body) {
      const existing = await ownerById(id, 'team')
      if (!existing) throw notFound('Group', id)
      return putGroup(existing, body)
    },
    async patchGroup(id, body) {
      const existing = await ownerById(id, 'team')
      if (!existing) throw notFound('Group', id)
      const current = toScimGroup(existing, await membersOf(existing.ref))
      return putGroup(existing, applyScimPatch(current, body))
    },
    async deleteGroup(id) {
      const existing = await ownerById(id, 'team')
      if (!existing) throw notFound('Group', id)
      await setMembers(existing.ref, [])
      await depart(existing)
    },
  }
}
