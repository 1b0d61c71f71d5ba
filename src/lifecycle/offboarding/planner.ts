import { sql, type Kysely } from 'kysely'
import { TesseraError } from '../../errors.js'
import { entityId } from '../../inventory/ids.js'
import { staticCredentialTypes } from '../../posture/rules/static-key-age.js'
import type { Database } from '../../store/index.js'
import type {
  AffectedCredential,
  AffectedIdentity,
  OffboardingRequest,
  PlanStep,
  StepAction,
} from './offboarding-types.js'

export interface ProposedPlan {
  reassignTo: string | null
  identities: AffectedIdentity[]
  credentials: AffectedCredential[]
  steps: Array<Omit<PlanStep, 'status' | 'attempts' | 'result' | 'error'>>
  warnings: string[]
}

interface IdentityRow {
  id: string
  ref: string
  kind: string
  source: string
  state: string
  owner_ref: string | null
  owner_primary: boolean
  owns_edge: boolean
  created: boolean
  delegated: boolean
  service: boolean
  other_owners: string[] | null
}

interface CredentialRow {
  id: string
  ref: string
  credential_type: string
  identity_ref: string | null
  relation: AffectedCredential['relation']
  repositories: string[] | null
}

const actionOrder: Record<StepAction, number> = { reassign: 0, rotate: 1, revoke: 2, disable: 3 }
const maxServiceDepth = 3

/**
 * Finds what a departing person, a dissolved team or a decommissioned service leaves behind, and
 * proposes what to do with each piece, with the reason. Read-only.
 */
export async function proposePlan(
  db: Kysely<Database>,
  request: OffboardingRequest,
): Promise<ProposedPlan> {
  const subject = request.subject.trim()
  if (subject === '' || subject.length > 1000) {
    throw new TesseraError('TSR_VALIDATION', 'the subject must be 1 to 1000 characters')
  }
  const ownerRow = await db
    .selectFrom('owner')
    .select(['ref', 'owner_type', 'status', 'team_ref', 'attributes'])
    .where('ref', '=', subject)
    .where('valid_to', 'is', null)
    .executeTakeFirst()
  const warnings: string[] = []
  if (request.subjectType !== 'service' && !ownerRow) {
    warnings.push(`${subject} is not in the owner directory; planning from owner refs only`)
  }
  const reassignTo =
    request.reassignTo ?? (request.subjectType === 'service' ? null : (ownerRow?.team_ref ?? null))

  const identities =
    request.subjectType === 'service'
      ? await serviceIdentities(db, subject)
      : await ownedIdentities(db, subject)
  const credentials =
    request.subjectType === 'service'
      ? await identityCredentials(
          db,
          identities.map((i) => i.id),
          'service',
        )
      : await personCredentials(db, subject, request.subjectType, ownerRow?.attributes, identities)

  const steps: ProposedPlan['steps'] = []
  const seen = new Set<string>()
  const add = (step: Omit<ProposedPlan['steps'][number], 'seq'>) => {
    const key = `${step.action}|${step.targetType}|${step.targetId}`
    if (seen.has(key)) return
    seen.add(key)
    steps.push({ seq: 0, ...step })
  }
  const affected: AffectedIdentity[] = []
  for (const i of identities) {
    const others = (i.other_owners ?? []).filter((o) => o !== subject)
    const relations = [
      ...(i.owner_primary ? ['owner'] : []),
      ...(i.owns_edge ? ['co-owner'] : []),
      ...(i.created ? ['creator'] : []),
      ...(i.delegated ? ['delegator'] : []),
      ...(i.service ? ['service'] : []),
    ]
    const owns = i.owner_primary || i.owns_edge
    const soleOwner = owns && others.length === 0
    affected.push({
      id: i.id,
      ref: i.ref,
      kind: i.kind,
      source: i.source,
      state: i.state,
      relations,
      soleOwner,
    })
    const target = { targetType: 'identity' as const, targetId: i.id, targetRef: i.ref }
    const spiffe = i.ref.startsWith('spiffe://')
    if (i.service || i.delegated) {
      const why = i.service
        ? `part of service ${subject}, which is decommissioned: its identities die with it`
        : `acts on behalf of ${subject} (delegated), who ${request.subjectType === 'team' ? 'is dissolved' : 'departs'}`
      if (spiffe) add({ action: 'revoke', ...target, reason: why, params: { spiffeId: i.ref } })
      add({ action: 'disable', ...target, reason: why, params: {} })
      continue
    }
    if (!owns) continue
    if (others.length > 0) {
      if (i.owner_primary) {
        add({
          action: 'reassign',
          ...target,
          reason: `${subject} leaves; ${others[0]} already co-owns it`,
          params: { to: others[0], from: subject },
        })
      }
    } else if (reassignTo) {
      add({
        action: 'reassign',
        ...target,
        reason:
          request.subjectType === 'team'
            ? `team ${subject} is dissolved; ${reassignTo} takes over`
            : `${subject} was its only owner; hand it to ${request.reassignTo ? reassignTo : `their team ${reassignTo}`}`,
        params: { to: reassignTo, from: subject },
      })
    } else {
      add({
        action: 'disable',
        ...target,
        reason: `${subject} was its only owner and nobody takes over (give a new owner to keep it)`,
        params: {},
      })
    }
  }
  for (const c of credentials) {
    const target = { targetType: 'credential' as const, targetId: c.id, targetRef: c.ref }
    if (c.relation === 'service') {
      add({
        action: 'revoke',
        ...target,
        reason: `credential of service ${subject}, which is decommissioned`,
        params: {},
      })
      continue
    }
    const reason =
      c.relation === 'introduced'
        ? `introduced by ${subject} (commit author): treat as known to them`
        : c.relation === 'seen'
          ? `found in ${(c.repositories ?? []).join(', ')}, which ${subject} worked in: they could have seen it`
          : `belongs to an identity ${subject} created: they may hold the secret`
    add({ action: 'rotate', ...target, reason, params: {} })
  }
  steps.sort(
    (a, b) =>
      actionOrder[a.action] - actionOrder[b.action] ||
      (a.targetRef < b.targetRef ? -1 : a.targetRef > b.targetRef ? 1 : 0),
  )
  steps.forEach((s, i) => (s.seq = i + 1))
  if (identities.length === 0 && credentials.length === 0) {
    warnings.push(`nothing in the inventory belongs to ${subject}`)
  }
  return {
    reassignTo,
    identities: affected,
    credentials: credentials.map((c) => ({
      id: c.id,
      ref: c.ref,
      credentialType: c.credential_type,
      identityRef: c.identity_ref,
      relation: c.relation,
      ...(c.repositories ? { repositories: c.repositories } : {}),
    })),
    steps,
    warnings,
  }
}

/** Identities the person or team owns (owner or `owns` edge), created, or delegated to. */
async function ownedIdentities(db: Kysely<Database>, subject: string): Promise<IdentityRow[]> {
  const ownerId = entityId('owner', subject)
  const r = await sql<IdentityRow>`
    with linked as (
      select e.to_id, bool_or(e.edge_type = 'owns') as owns_edge,
        bool_or(e.edge_type = 'created') as created_edge,
        bool_or(e.edge_type = 'delegated_to') as delegated
      from edge e
      where e.valid_to is null and e.from_id = ${ownerId}::uuid and e.to_type = 'identity'
        and e.edge_type in ('owns', 'created', 'delegated_to')
      group by e.to_id
    )
    select i.id, i.ref, i.kind, i.source, i.state, i.owner_ref,
      coalesce(i.owner_ref = ${subject}, false) as owner_primary,
      coalesce(l.owns_edge, false) as owns_edge,
      (coalesce(i.created_by = ${subject}, false) or coalesce(l.created_edge, false)) as created,
      coalesce(l.delegated, false) as delegated, false as service,
      array(
        select o from (
          select i.owner_ref as o
          union
          select e.from_ref from edge e
          where e.valid_to is null and e.to_id = i.id and e.edge_type = 'owns'
            and e.from_type = 'owner'
        ) x
        where o is not null and o <> ${subject} and not exists (
          select 1 from owner ow where ow.ref = x.o and ow.valid_to is null
            and ow.status = 'departed')
        order by o
      ) as other_owners
    from identity i
    left join linked l on l.to_id = i.id
    where i.valid_to is null and i.state <> 'deleted'
      and (i.owner_ref = ${subject} or i.created_by = ${subject} or l.to_id is not null)
    order by i.ref`.execute(db)
  return r.rows
}

/**
 * A service's identities: the identity with the service's ref and those labelled with it
 * (attribute `service`), and what hangs off them within three hops: workloads that run as them,
 * identities they created or delegated to.
 */
async function serviceIdentities(db: Kysely<Database>, service: string): Promise<IdentityRow[]> {
  const r = await sql<IdentityRow>`
    with recursive roots as (
      select i.id from identity i
      where i.valid_to is null and i.state <> 'deleted'
        and (i.ref = ${service} or i.attributes ->> 'service' = ${service})
    ),
    tree (id, depth) as (
      select id, 0 from roots
      union
      select case when e.edge_type = 'runs_as' then e.from_id else e.to_id end, t.depth + 1
      from tree t
      join edge e on e.valid_to is null and (
        (e.edge_type = 'runs_as' and e.to_id = t.id and e.from_type = 'identity')
        or (e.edge_type in ('created', 'delegated_to') and e.from_id = t.id
          and e.to_type = 'identity'))
      where t.depth < ${maxServiceDepth}
    )
    select i.id, i.ref, i.kind, i.source, i.state, i.owner_ref, false as owner_primary,
      false as owns_edge, false as created, false as delegated, true as service,
      null::text[] as other_owners
    from identity i
    where i.valid_to is null and i.state <> 'deleted' and i.id in (select id from tree)
    order by i.ref`.execute(db)
  if (r.rows.length === 0) {
    throw new TesseraError(
      'TSR_NOT_FOUND',
      `no service ${JSON.stringify(service)}: no identity has that ref or attribute service`,
    )
  }
  return r.rows
}

async function identityCredentials(
  db: Kysely<Database>,
  ids: string[],
  relation: AffectedCredential['relation'],
  onlyStatic = false,
): Promise<CredentialRow[]> {
  if (ids.length === 0) return []
  const r = await sql<CredentialRow>`
    select c.id, c.ref, c.credential_type, c.identity_ref, ${relation} as relation,
      null::text[] as repositories
    from credential c
    where c.valid_to is null and c.state = 'active'
      and c.identity_id in (select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb)::uuid)
      ${onlyStatic ? sql`and c.credential_type in (select jsonb_array_elements_text(${JSON.stringify(staticCredentialTypes)}::jsonb))` : sql``}
    order by c.ref`.execute(db)
  return r.rows
}

/**
 * Credentials a person introduced (`created` edge, e.g. from the scanner's commit author), could
 * have seen (found in a repository they committed a secret to, own, or are listed with in their
 * owner attributes `repositories`), and the static credentials of identities they created.
 */
async function personCredentials(
  db: Kysely<Database>,
  subject: string,
  subjectType: 'person' | 'team',
  attributes: unknown,
  identities: IdentityRow[],
): Promise<CredentialRow[]> {
  const ownerId = entityId('owner', subject)
  const attrs = (typeof attributes === 'string' ? JSON.parse(attributes) : attributes) as
    Record<string, unknown> | undefined
  const listed = Array.isArray(attrs?.repositories)
    ? attrs.repositories.filter((r): r is string => typeof r === 'string')
    : []
  const byId = new Map<string, CredentialRow>()
  if (subjectType === 'person') {
    const r = await sql<CredentialRow>`
      with introduced as (
        select c.id, c.ref, c.credential_type, c.identity_ref
        from edge e
        join credential c on c.id = e.to_id and c.valid_to is null and c.state <> 'revoked'
        where e.valid_to is null and e.from_id = ${ownerId}::uuid and e.edge_type = 'created'
          and e.to_type = 'credential'
      ),
      repos as (
        select distinct l.repository as repo from credential_location l
        where l.valid_to is null and l.repository is not null
          and l.credential_id in (select id from introduced)
        union
        select e.to_ref from edge e
        where e.valid_to is null and e.from_id = ${ownerId}::uuid and e.edge_type = 'owns'
          and e.to_type = 'resource'
        union
        select jsonb_array_elements_text(${JSON.stringify(listed)}::jsonb)
      ),
      seen as (
        select c.id, c.ref, c.credential_type, c.identity_ref,
          array_agg(distinct l.repository order by l.repository) as repositories
        from credential_location l
        join credential c on c.id = l.credential_id and c.valid_to is null and c.state <> 'revoked'
        where l.valid_to is null and l.repository in (select repo from repos)
          and c.id not in (select id from introduced)
        group by c.id, c.ref, c.credential_type, c.identity_ref
      )
      select id, ref, credential_type, identity_ref, 'introduced' as relation,
        null::text[] as repositories
      from introduced
      union all
      select id, ref, credential_type, identity_ref, 'seen', repositories from seen`.execute(db)
    for (const row of r.rows) byId.set(row.id, row)
  }
  const created = identities.filter((i) => i.created).map((i) => i.id)
  for (const row of await identityCredentials(db, created, 'created-identity', true)) {
    if (!byId.has(row.id)) byId.set(row.id, row)
  }
  return [...byId.values()].sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0))
}
