import { sql } from 'kysely'
import { entityId } from '../inventory/ids.js'
import { parseSpiffeId } from '../spiffe/id.js'
import type { Store } from '../store/store.js'
import { cedarNamespace, type CedarValueJson, type EntityJson } from './cedar.js'

/**
 * Cedar entities built from the identity graph, cached. A principal's bundle is its Identity
 * entity, its owner (Owner) and the teams above it (Team, following `team_ref` upwards); a
 * resource's bundle is its Resource entity and its ancestors (the `parent` attribute, a resource
 * ref). Entities for refs absent from the graph are built too, with `inGraph == false`.
 *
 * The cache follows the graph: `checkVersion()` reads the highest version id of the identity, owner,
 * resource and registration-entry tables and the last finished discovery run; when any moved, every
 * cached bundle is dropped. Facts change by new versions (which raise the highest id) and disappear
 * when a full run closes them (which finishes a run), so both show. `invalidate()` drops everything
 * at once, for callers that know better.
 */

export const entityType = {
  identity: `${cedarNamespace}::Identity`,
  owner: `${cedarNamespace}::Owner`,
  team: `${cedarNamespace}::Team`,
  resource: `${cedarNamespace}::Resource`,
  action: `${cedarNamespace}::Action`,
} as const

export interface PrincipalBundle {
  uid: { type: string; id: string }
  entities: EntityJson[]
  /** The attestation selectors of the registration entries for this SPIFFE ID (`type:value`). */
  selectors: string[]
  /** The `environment` attribute of the identity, when it has a string one. */
  environment?: string
}

export interface ResourceBundle {
  uid: { type: string; id: string }
  entities: EntityJson[]
  environment?: string
}

export interface EntityCache {
  principal(ref: string): Promise<PrincipalBundle>
  resource(ref: string): Promise<ResourceBundle>
  /** Drops the cache when the graph moved since the last check; true when it did. */
  checkVersion(): Promise<boolean>
  invalidate(): void
  readonly size: number
}

export interface EntityCacheDeps {
  store: Store
  /** Bundles kept at most (the whole cache is dropped past it; default 100,000). */
  maxEntries?: number
}

const maxTeamDepth = 8
const maxResourceDepth = 8

/** A free-form jsonb attribute map reduced to what Cedar can hold (strings, booleans, whole numbers, string sets). */
export function cedarAttributes(attrs: unknown): Record<string, CedarValueJson> {
  const out: Record<string, CedarValueJson> = {}
  if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs)) return out
  for (const [k, v] of Object.entries(attrs as Record<string, unknown>)) {
    if (typeof v === 'string' || typeof v === 'boolean') out[k] = v
    else if (typeof v === 'number' && Number.isSafeInteger(v)) out[k] = v
    else if (Array.isArray(v) && v.every((e) => typeof e === 'string')) out[k] = v as string[]
  }
  return out
}

export function createEntityCache(deps: EntityCacheDeps): EntityCache {
  const db = deps.store.db
  const maxEntries = deps.maxEntries ?? 100_000
  let principals = new Map<string, Promise<PrincipalBundle>>()
  let resources = new Map<string, Promise<ResourceBundle>>()
  let version: string | undefined

  const clear = () => {
    principals = new Map()
    resources = new Map()
  }

  async function loadTeams(ref: string | null, out: EntityJson[], seen: Set<string>) {
    let current = ref
    for (let depth = 0; current && depth < maxTeamDepth && !seen.has(current); depth++) {
      seen.add(current)
      const row = await db
        .selectFrom('owner')
        .select(['name', 'status', 'team_ref'])
        .where('id', '=', entityId('owner', current))
        .where('valid_to', 'is', null)
        .executeTakeFirst()
      const parent = row?.team_ref ?? null
      out.push({
        uid: { type: entityType.team, id: current },
        attrs: { name: row?.name ?? current, status: row?.status ?? 'unknown' },
        parents: parent ? [{ type: entityType.team, id: parent }] : [],
      })
      current = parent
    }
  }

  async function loadPrincipal(ref: string): Promise<PrincipalBundle> {
    const uid = { type: entityType.identity, id: ref }
    let spiffe: { trustDomain: string } | undefined
    try {
      spiffe = ref.startsWith('spiffe://') ? parseSpiffeId(ref) : undefined
    } catch {
      spiffe = undefined
    }
    const [row, entries] = await Promise.all([
      db
        .selectFrom('identity')
        .select(['kind', 'name', 'state', 'source', 'owner_ref', 'created_by', 'attributes'])
        .where('id', '=', entityId('identity', ref))
        .where('valid_to', 'is', null)
        .executeTakeFirst(),
      spiffe
        ? db
            .selectFrom('registration_entry')
            .select('selectors')
            .where('spiffe_id', '=', ref)
            .where('valid_to', 'is', null)
            .where('deleted', '=', false)
            .execute()
        : Promise.resolve([]),
    ])
    const selectors = [
      ...new Set(entries.flatMap((e) => e.selectors.map((s) => `${s.type}:${s.value}`))),
    ].sort()
    const attributes = cedarAttributes(row?.attributes)
    const attrs: Record<string, CedarValueJson> = {
      kind: row?.kind ?? (spiffe ? 'workload' : 'unknown'),
      name: row?.name ?? ref,
      state: row?.state ?? 'unknown',
      inGraph: row !== undefined,
      attributes,
    }
    if (row) attrs.source = row.source
    if (spiffe) {
      attrs.spiffeId = ref
      attrs.trustDomain = spiffe.trustDomain
    }
    if (row?.created_by) attrs.createdBy = row.created_by
    const entities: EntityJson[] = []
    const parents: { type: string; id: string }[] = []
    const teams: EntityJson[] = []
    if (row?.owner_ref) {
      attrs.ownerRef = row.owner_ref
      const owner = await db
        .selectFrom('owner')
        .select(['owner_type', 'name', 'status', 'email', 'team_ref'])
        .where('id', '=', entityId('owner', row.owner_ref))
        .where('valid_to', 'is', null)
        .executeTakeFirst()
      if (owner) {
        attrs.owner = { __entity: { type: entityType.owner, id: row.owner_ref } }
        // A team owner is the identity's team; a person's team is theirs.
        const team = owner.owner_type === 'team' ? row.owner_ref : owner.team_ref
        entities.push({
          uid: { type: entityType.owner, id: row.owner_ref },
          attrs: {
            ownerType: owner.owner_type,
            name: owner.name,
            status: owner.status,
            ...(owner.email ? { email: owner.email } : {}),
          },
          parents: team ? [{ type: entityType.team, id: team }] : [],
        })
        if (team) {
          parents.push({ type: entityType.team, id: team })
          await loadTeams(team, teams, new Set())
        }
      }
    }
    entities.unshift({ uid, attrs, parents })
    entities.push(...teams)
    const environment =
      typeof attributes.environment === 'string' ? attributes.environment : undefined
    return { uid, entities, selectors, ...(environment ? { environment } : {}) }
  }

  async function loadResource(ref: string): Promise<ResourceBundle> {
    const uid = { type: entityType.resource, id: ref }
    const entities: EntityJson[] = []
    const seen = new Set<string>()
    let current: string | undefined = ref
    let environment: string | undefined
    for (let depth = 0; current !== undefined && depth < maxResourceDepth; depth++) {
      if (seen.has(current)) break
      seen.add(current)
      const row = await db
        .selectFrom('resource')
        .select(['resource_type', 'name', 'environment', 'source', 'attributes'])
        .where('id', '=', entityId('resource', current))
        .where('valid_to', 'is', null)
        .executeTakeFirst()
      const attributes = cedarAttributes(row?.attributes)
      const parent =
        typeof attributes.parent === 'string' && attributes.parent !== ''
          ? attributes.parent
          : undefined
      const attrs: Record<string, CedarValueJson> = {
        resourceType: row?.resource_type ?? 'unknown',
        name: row?.name ?? current,
        inGraph: row !== undefined,
        attributes,
      }
      if (row?.environment) attrs.environment = row.environment
      if (row) attrs.source = row.source
      if (parent) attrs.parentRef = parent
      if (depth === 0 && row?.environment) environment = row.environment
      entities.push({
        uid: { type: entityType.resource, id: current },
        attrs,
        parents: parent ? [{ type: entityType.resource, id: parent }] : [],
      })
      // Only graph resources have parents worth following.
      current = row ? parent : undefined
    }
    return { uid, entities, ...(environment ? { environment } : {}) }
  }

  function cached<T>(map: Map<string, Promise<T>>, ref: string, load: (r: string) => Promise<T>) {
    let hit = map.get(ref)
    if (hit === undefined) {
      if (principals.size + resources.size >= maxEntries) clear()
      hit = load(ref)
      map.set(ref, hit)
      // A failed load is not kept: the next request tries again.
      hit.catch(() => {
        if (map.get(ref) === hit) map.delete(ref)
      })
    }
    return hit
  }

  return {
    principal: (ref) => cached(principals, ref, loadPrincipal),
    resource: (ref) => cached(resources, ref, loadResource),
    async checkVersion() {
      const r = await sql<{ v: string }>`select concat_ws('/',
          coalesce((select max(version_id) from identity), 0),
          coalesce((select max(version_id) from owner), 0),
          coalesce((select max(version_id) from resource), 0),
          coalesce((select max(version_id) from registration_entry), 0),
          coalesce((select max(finished_at)::text from discovery_run), '-')) as v`.execute(db)
      const next = r.rows[0]?.v ?? ''
      const moved = version !== undefined && next !== version
      if (moved) clear()
      version = next
      return moved
    },
    invalidate: clear,
    get size() {
      return principals.size + resources.size
    },
  }
}
