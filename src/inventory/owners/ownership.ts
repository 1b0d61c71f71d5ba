import { sql, type Kysely } from 'kysely'
import { TesseraError } from '../../errors.js'
import type { Database, IdentityKind } from '../../store/schema.js'
import { entityId, isUuid } from '../ids.js'
import {
  codeownersFor,
  parseCodeowners,
  type CodeownersRule,
  type CodeownersSource,
} from './codeowners.js'

/**
 * Who owns an identity, and why. Each step of the resolution order looks at one kind of evidence;
 * the first step that names an owner decides, and the later ones are kept as alternatives (what an
 * operator can fall back on). An identity with no owner, or whose owner has departed, is orphaned.
 */
export const ownershipSteps = [
  'explicit',
  'source',
  'tags',
  'codeowners',
  'commit-author',
  'created-by',
  'parent',
] as const
export type OwnershipStep = (typeof ownershipSteps)[number]

/** The default order; `tessera.policy.yaml` (`ownership.order`) or the server config may change it. */
export const defaultOwnershipOrder: readonly OwnershipStep[] = ownershipSteps

/** How much each kind of evidence is trusted (0..1). */
export const stepConfidence: Record<OwnershipStep, number> = {
  explicit: 1,
  source: 0.9,
  tags: 0.8,
  codeowners: 0.7,
  'commit-author': 0.6,
  'created-by': 0.5,
  parent: 0.8, // times the parent's own confidence
}

/** An owner named by no owner record is trusted less. */
const unknownOwnerFactor = 0.8
const maxParentDepth = 4

export interface OwnerSummary {
  ref: string
  name: string | null
  ownerType: 'person' | 'team' | null
  /** `unknown`: no owner record has this ref (not imported, or a typo). */
  status: 'active' | 'departed' | 'suspended' | 'unknown'
  team: string | null
}

export interface OwnershipEvidence {
  step: OwnershipStep
  owner: string
  confidence: number
  /** What was seen, in words: `tag team=payments-core`, `CODEOWNERS line 4 (/deploy/ @acme/sre)`. */
  detail: string
}

export interface Ownership {
  identityId: string
  identityRef: string
  name: string
  kind: IdentityKind
  owner: OwnerSummary | null
  confidence: number
  /** The deciding evidence first, then the alternatives the later steps found. */
  evidence: OwnershipEvidence[]
  orphaned: boolean
  orphanReason?: 'no-owner' | 'owner-departed'
}

export interface IdentityForOwnership {
  id: string
  ref: string
  name: string
  kind: IdentityKind
  owner_ref: string | null
  created_by: string | null
  attributes: Record<string, unknown>
}

export interface OwnershipResolverDeps {
  db: Kysely<Database>
  codeowners?: CodeownersSource
  order?: readonly OwnershipStep[]
}

export interface OwnershipResolver {
  /** One identity by id or ref; undefined when there is no such current identity. */
  resolve(idOrRef: string): Promise<Ownership | undefined>
  /** Many identities at once (set-based loads; order of the input kept). */
  resolveMany(identities: readonly IdentityForOwnership[]): Promise<Ownership[]>
  /** Every current identity, page by page. */
  resolveAll(pageSize?: number): AsyncIterable<Ownership[]>
}

export function checkOwnershipOrder(order: readonly string[]): OwnershipStep[] {
  const known = new Set<string>(ownershipSteps)
  const seen = new Set<string>()
  for (const s of order) {
    if (!known.has(s)) {
      throw new TesseraError(
        'TSR_VALIDATION',
        `unknown ownership step "${s}"; expected ${ownershipSteps.join(', ')}`,
      )
    }
    if (seen.has(s)) throw new TesseraError('TSR_VALIDATION', `ownership step "${s}" given twice`)
    seen.add(s)
  }
  return [...order] as OwnershipStep[]
}

const tagKeys: Array<{ key: string; aliases: string[]; confidence: number }> = [
  { key: 'owner', aliases: ['owner', 'Owner', 'tessera.dev/owner'], confidence: 0.8 },
  { key: 'team', aliases: ['team', 'Team', 'tessera.dev/team'], confidence: 0.75 },
  {
    key: 'cost-center',
    aliases: ['cost-center', 'costCenter', 'cost_center', 'CostCenter'],
    confidence: 0.6,
  },
]

/** Reads `owner`/`team`/`cost-center` from attributes, `attributes.tags` (object or AWS Key/Value list) and `attributes.labels`. */
export function tagsOf(attributes: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>()
  const take = (bag: unknown) => {
    if (Array.isArray(bag)) {
      for (const t of bag) {
        if (t && typeof t === 'object') {
          const k = (t as Record<string, unknown>).Key ?? (t as Record<string, unknown>).key
          const v = (t as Record<string, unknown>).Value ?? (t as Record<string, unknown>).value
          if (typeof k === 'string' && typeof v === 'string' && !out.has(k)) out.set(k, v)
        }
      }
    } else if (bag && typeof bag === 'object') {
      for (const [k, v] of Object.entries(bag)) {
        if (typeof v === 'string' && v.trim() !== '' && !out.has(k)) out.set(k, v.trim())
      }
    }
  }
  take({ owner: attributes.owner, team: attributes.team, 'cost-center': attributes['cost-center'] })
  take(attributes.tags)
  take(attributes.labels)
  return out
}

interface Loaded {
  assignments: Map<string, { owner_ref: string; reason: string | null; assigned_by: string | null }>
  /** Edges into an identity: owns / created / delegated_to / can_assume, by identity id. */
  incoming: Map<
    string,
    Array<{
      edge_type: string
      from_type: string
      from_ref: string
      from_id: string
      source: string
    }>
  >
  /** runs_as edges out of an identity. */
  runsAs: Map<string, Array<{ to_id: string; to_ref: string }>>
  /** Credentials' git locations and `created` edges (commit authors), by identity id. */
  locations: Map<string, Array<{ repository: string; file: string; commit: string | null }>>
  authors: Map<string, Array<{ person: string; credential: string }>>
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

export function createOwnershipResolver(deps: OwnershipResolverDeps): OwnershipResolver {
  const db = deps.db
  const order = deps.order ?? defaultOwnershipOrder

  async function load(ids: readonly string[]): Promise<Loaded> {
    const loaded: Loaded = {
      assignments: new Map(),
      incoming: new Map(),
      runsAs: new Map(),
      locations: new Map(),
      authors: new Map(),
    }
    for (const part of chunks(ids, 2000)) {
      if (order.includes('explicit')) {
        const rows = await db
          .selectFrom('owner_assignment')
          .select(['identity_id', 'owner_ref', 'reason', 'assigned_by'])
          .where('identity_id', 'in', part)
          .where('valid_to', 'is', null)
          .execute()
        for (const r of rows) loaded.assignments.set(r.identity_id, r)
      }
      const edges = await db
        .selectFrom('edge')
        .select(['edge_type', 'from_type', 'from_ref', 'from_id', 'to_id', 'source'])
        .where('to_id', 'in', part)
        .where('valid_to', 'is', null)
        .where('edge_type', 'in', ['owns', 'created', 'delegated_to', 'can_assume'])
        .execute()
      for (const e of edges) push(loaded.incoming, e.to_id, e)
      if (order.includes('parent')) {
        const out = await db
          .selectFrom('edge')
          .select(['from_id', 'to_id', 'to_ref'])
          .where('from_id', 'in', part)
          .where('valid_to', 'is', null)
          .where('edge_type', '=', 'runs_as')
          .where('to_type', '=', 'identity')
          .execute()
        for (const e of out) push(loaded.runsAs, e.from_id, e)
      }
      if (order.includes('codeowners') || order.includes('commit-author')) {
        const creds = await db
          .selectFrom('credential')
          .select(['id', 'identity_id', 'ref'])
          .where('identity_id', 'in', part)
          .where('valid_to', 'is', null)
          .execute()
        if (creds.length === 0) continue
        const byCred = new Map(creds.map((c) => [c.id, c]))
        const credIds = [...byCred.keys()]
        for (const cpart of chunks(credIds, 2000)) {
          const locs = await db
            .selectFrom('credential_location')
            .select(['credential_id', 'repository', 'file', 'commit'])
            .where('credential_id', 'in', cpart)
            .where('valid_to', 'is', null)
            .where('repository', 'is not', null)
            .where('file', 'is not', null)
            .execute()
          for (const l of locs) {
            const identityId = byCred.get(l.credential_id)?.identity_id
            if (identityId) {
              push(loaded.locations, identityId, {
                repository: l.repository!,
                file: l.file!,
                commit: l.commit,
              })
            }
          }
          const created = await db
            .selectFrom('edge')
            .select(['to_id', 'from_ref', 'to_ref'])
            .where('to_id', 'in', cpart)
            .where('valid_to', 'is', null)
            .where('edge_type', '=', 'created')
            .where('from_type', '=', 'owner')
            .execute()
          for (const c of created) {
            const identityId = byCred.get(c.to_id)?.identity_id
            if (identityId)
              push(loaded.authors, identityId, { person: c.from_ref, credential: c.to_ref })
          }
        }
      }
    }
    return loaded
  }

  async function loadOwners(refs: Iterable<string>): Promise<Map<string, OwnerSummary>> {
    const byId = new Map<string, string>()
    for (const r of refs) byId.set(entityId('owner', r), r)
    const out = new Map<string, OwnerSummary>()
    for (const part of chunks([...byId.keys()], 2000)) {
      const rows = await db
        .selectFrom('owner')
        .select(['ref', 'name', 'owner_type', 'status', 'team_ref'])
        .where('id', 'in', part)
        .where('valid_to', 'is', null)
        .execute()
      for (const r of rows) {
        out.set(r.ref, {
          ref: r.ref,
          name: r.name,
          ownerType: r.owner_type,
          status: r.status,
          team: r.team_ref,
        })
      }
    }
    return out
  }

  /** Owners matched by attribute (cost centre, GitHub login or team slug), loaded once per call. */
  let attributeIndex:
    Promise<{ costCenter: Map<string, string>; github: Map<string, string> }> | undefined
  const attributeOwners = () =>
    (attributeIndex ??= (async () => {
      const rows = await db
        .selectFrom('owner')
        .select(['ref', 'owner_type', 'attributes'])
        .where('valid_to', 'is', null)
        .where(sql<boolean>`(attributes ? 'costCenter' or attributes ? 'github')`)
        .execute()
      const costCenter = new Map<string, string>()
      const github = new Map<string, string>()
      // A team wins a cost centre over a person in it.
      for (const r of rows.sort(
        (a, b) => (a.owner_type === 'team' ? -1 : 1) - (b.owner_type === 'team' ? -1 : 1),
      )) {
        const a = r.attributes as Record<string, unknown>
        if (typeof a.costCenter === 'string' && !costCenter.has(a.costCenter))
          costCenter.set(a.costCenter, r.ref)
        if (typeof a.github === 'string') github.set(a.github.toLowerCase(), r.ref)
      }
      return { costCenter, github }
    })())

  const codeownerRules = new Map<string, Promise<CodeownersRule[] | undefined>>()
  async function rulesFor(repository: string): Promise<CodeownersRule[] | undefined> {
    let p = codeownerRules.get(repository)
    if (!p) {
      p = (async () => {
        const stored = await db
          .selectFrom('codeowners_file')
          .select('content')
          .where('repository', '=', repository)
          .executeTakeFirst()
        const text = stored?.content ?? (await deps.codeowners?.get(repository))
        return text === undefined ? undefined : parseCodeowners(text)
      })()
      codeownerRules.set(repository, p)
    }
    return p
  }

  /** `@org/team` → team slug, `@login` → the owner with that GitHub login, an email → itself. */
  async function codeownerRef(entry: string): Promise<string> {
    const { github } = await attributeOwners()
    if (entry.startsWith('@')) {
      const handle = entry.slice(1).toLowerCase()
      const mapped = github.get(handle)
      if (mapped) return mapped
      const slash = handle.indexOf('/')
      return slash >= 0 ? handle.slice(slash + 1) : handle
    }
    return entry.toLowerCase()
  }

  async function candidates(
    identity: IdentityForOwnership,
    loaded: Loaded,
  ): Promise<{ found: OwnershipEvidence[]; parents: string[] }> {
    const found: OwnershipEvidence[] = []
    const parents: string[] = []
    const incoming = loaded.incoming.get(identity.id) ?? []
    for (const step of order) {
      switch (step) {
        case 'explicit': {
          const a = loaded.assignments.get(identity.id)
          if (a) {
            found.push({
              step,
              owner: a.owner_ref,
              confidence: stepConfidence.explicit,
              detail: `assigned${a.assigned_by ? ` by ${a.assigned_by}` : ''}${a.reason ? `: ${a.reason}` : ''}`,
            })
          }
          break
        }
        case 'source': {
          if (identity.owner_ref) {
            found.push({
              step,
              owner: identity.owner_ref,
              confidence: stepConfidence.source,
              detail: 'owner given by the source',
            })
          }
          for (const e of incoming) {
            if (e.edge_type === 'owns' && e.from_type === 'owner') {
              found.push({
                step,
                owner: e.from_ref,
                confidence: 0.85,
                detail: `owns edge from ${e.source}`,
              })
            }
          }
          break
        }
        case 'tags': {
          const tags = tagsOf(identity.attributes)
          for (const { key, aliases, confidence } of tagKeys) {
            const alias = aliases.find((a) => tags.has(a))
            if (alias === undefined) continue
            const value = tags.get(alias)!
            let owner = key === 'owner' && value.includes('@') ? value.toLowerCase() : value
            if (key === 'cost-center') {
              const mapped = (await attributeOwners()).costCenter.get(value)
              if (!mapped) continue
              owner = mapped
            }
            found.push({ step, owner, confidence, detail: `tag ${alias}=${value}` })
          }
          break
        }
        case 'codeowners': {
          for (const loc of loaded.locations.get(identity.id) ?? []) {
            const rules = await rulesFor(loc.repository)
            if (!rules) continue
            const match = codeownersFor(rules, loc.file)
            if (!match) continue
            for (const entry of match.owners) {
              found.push({
                step,
                owner: await codeownerRef(entry),
                confidence: stepConfidence.codeowners,
                detail: `CODEOWNERS of ${loc.repository} line ${match.rule.line} (${match.rule.pattern} ${entry}) for ${loc.file}`,
              })
            }
          }
          break
        }
        case 'commit-author': {
          for (const a of loaded.authors.get(identity.id) ?? []) {
            found.push({
              step,
              owner: a.person,
              confidence: stepConfidence['commit-author'],
              detail: `introduced credential ${a.credential} in a commit`,
            })
          }
          break
        }
        case 'created-by': {
          const createdBy = identity.created_by
          if (createdBy) {
            found.push({
              step,
              owner: createdBy,
              confidence: stepConfidence['created-by'],
              detail: 'created_by given by the source',
            })
          }
          for (const e of incoming) {
            if (e.edge_type === 'created' && e.from_type === 'owner' && e.from_ref !== createdBy) {
              found.push({
                step,
                owner: e.from_ref,
                confidence: stepConfidence['created-by'],
                detail: `created edge from ${e.source}`,
              })
            }
          }
          break
        }
        case 'parent': {
          for (const e of incoming) {
            if (e.edge_type === 'delegated_to' && e.from_type === 'owner') {
              found.push({
                step,
                owner: e.from_ref,
                confidence: stepConfidence.parent,
                detail: `delegated by ${e.from_ref}`,
              })
            } else if (
              (e.edge_type === 'delegated_to' || e.edge_type === 'can_assume') &&
              e.from_type === 'identity'
            ) {
              parents.push(e.from_id)
            }
          }
          for (const e of loaded.runsAs.get(identity.id) ?? []) parents.push(e.to_id)
          break
        }
      }
    }
    return { found, parents }
  }

  async function resolveMany(
    identities: readonly IdentityForOwnership[],
    depth = 0,
    visiting: ReadonlySet<string> = new Set(),
  ): Promise<Ownership[]> {
    if (identities.length === 0) return []
    const loaded = await load(identities.map((i) => i.id))
    const perIdentity = await Promise.all(identities.map((i) => candidates(i, loaded)))
    // Parents' ownership, one level up (cycles and deep chains cut).
    const parentIds = new Set<string>()
    if (depth < maxParentDepth) {
      perIdentity.forEach((c, i) => {
        for (const p of c.parents) if (!visiting.has(p) && p !== identities[i]!.id) parentIds.add(p)
      })
    }
    const parentOwnership = new Map<string, Ownership>()
    if (parentIds.size > 0) {
      const rows = await identityRows(db, [...parentIds])
      const nextVisiting = new Set([...visiting, ...identities.map((i) => i.id)])
      for (const o of await resolveMany(rows, depth + 1, nextVisiting))
        parentOwnership.set(o.identityId, o)
    }
    for (const [i, c] of perIdentity.entries()) {
      for (const p of c.parents) {
        const po = parentOwnership.get(p)
        if (!po?.owner) continue
        c.found.push({
          step: 'parent',
          owner: po.owner.ref,
          confidence: round(po.confidence * stepConfidence.parent),
          detail: `owner of parent identity ${po.identityRef}`,
        })
      }
      // Keep the configured order: a parent found later than other parent evidence stays in place.
      c.found.sort((a, b) => order.indexOf(a.step) - order.indexOf(b.step))
      void i
    }
    const refs = new Set<string>()
    for (const c of perIdentity) for (const f of c.found) refs.add(f.owner)
    const owners = await loadOwners(refs)
    return identities.map((identity, i) => decide(identity, perIdentity[i]!.found, owners))
  }

  return {
    async resolve(idOrRef) {
      const id = isUuid(idOrRef) ? idOrRef.toLowerCase() : entityId('identity', idOrRef)
      const rows = await identityRows(db, [id])
      if (rows.length === 0) return undefined
      return (await resolveMany(rows))[0]
    },
    resolveMany: (identities) => resolveMany(identities),
    async *resolveAll(pageSize = 2000) {
      let after = ''
      for (;;) {
        const rows = await db
          .selectFrom('identity')
          .select(['id', 'ref', 'name', 'kind', 'owner_ref', 'created_by', 'attributes'])
          .where('valid_to', 'is', null)
          .where('id', '>', after === '' ? '00000000-0000-0000-0000-000000000000' : after)
          .orderBy('id')
          .limit(pageSize)
          .execute()
        if (rows.length === 0) return
        after = rows[rows.length - 1]!.id
        yield await resolveMany(rows.map(asIdentity))
        if (rows.length < pageSize) return
      }
    },
  }
}

function asIdentity(r: {
  id: string
  ref: string
  name: string
  kind: IdentityKind
  owner_ref: string | null
  created_by: string | null
  attributes: unknown
}): IdentityForOwnership {
  return { ...r, attributes: (r.attributes ?? {}) as Record<string, unknown> }
}

async function identityRows(
  db: Kysely<Database>,
  ids: readonly string[],
): Promise<IdentityForOwnership[]> {
  const out: IdentityForOwnership[] = []
  for (const part of chunks(ids, 2000)) {
    const rows = await db
      .selectFrom('identity')
      .select(['id', 'ref', 'name', 'kind', 'owner_ref', 'created_by', 'attributes'])
      .where('id', 'in', part)
      .where('valid_to', 'is', null)
      .execute()
    out.push(...rows.map(asIdentity))
  }
  return out
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000
}

function decide(
  identity: IdentityForOwnership,
  found: OwnershipEvidence[],
  owners: Map<string, OwnerSummary>,
): Ownership {
  const evidence = found.map((f) =>
    owners.has(f.owner) ? f : { ...f, confidence: round(f.confidence * unknownOwnerFactor) },
  )
  const base = {
    identityId: identity.id,
    identityRef: identity.ref,
    name: identity.name,
    kind: identity.kind,
  }
  const first = evidence[0]
  if (!first) {
    return {
      ...base,
      owner: null,
      confidence: 0,
      evidence,
      orphaned: true,
      orphanReason: 'no-owner',
    }
  }
  const owner: OwnerSummary = owners.get(first.owner) ?? {
    ref: first.owner,
    name: null,
    ownerType: null,
    status: 'unknown',
    team: null,
  }
  const departed = owner.status === 'departed'
  return {
    ...base,
    owner,
    confidence: first.confidence,
    evidence,
    orphaned: departed,
    ...(departed ? { orphanReason: 'owner-departed' as const } : {}),
  }
}
