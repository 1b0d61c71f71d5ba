import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import type { EventSink } from '../../audit/event-sink.js'
import { TesseraError } from '../../errors.js'
import { entityId } from '../../inventory/ids.js'
import {
  createOwnershipResolver,
  tagsOf,
  type Ownership,
} from '../../inventory/owners/ownership.js'
import type { CodeownersSource } from '../../inventory/owners/codeowners.js'
import type {
  FindingInput,
  FindingReporter,
  FindingReportResult,
  PostureConfig,
} from '../../posture/finding-types.js'
import { systemClock, type Clock } from '../../runtime/clock.js'
import type { IdentityKind } from '../../store/schema.js'
import type { Store } from '../../store/store.js'
import { parsePolicy } from './policy-parse.js'
import {
  checkNaming,
  checkPipeline,
  checkRegistration,
  checkSpiffeIdTemplates,
  checkTtl,
  forbiddenIn,
  governanceRules,
  missingTags,
  namingSubject,
  type GovernanceRule,
  type Violation,
} from './policy-rules.js'
import type { GovernancePolicy } from './policy-types.js'
import { diffPolicies, type PolicyChange } from './policy-diff.js'

export const governancePolicyName = 'tessera'

export interface PolicyVersionSummary {
  version: number
  createdAt: string
  createdBy: string | null
  active: boolean
  sha256: string
}

export interface PolicyVersion extends PolicyVersionSummary {
  body: string
  policy: GovernancePolicy
}

export interface PolicyTestResult {
  /** Active version compared against (none: every violation is new). */
  against: number | null
  /** Violations the candidate raises that the active policy does not. */
  newViolations: FindingInput[]
  /** Violations of the active policy the candidate no longer raises. */
  resolved: FindingInput[]
  /** Count of all the candidate's violations per rule. */
  totals: Record<string, number>
}

/** What the registration gate sees of an entry. */
export interface EntryForPolicy {
  spiffeId: string
  owner: string
  x509SvidTtl?: number
  jwtSvidTtl?: number
}

/** What the token-exchange gate sees. */
export interface ExchangeForPolicy {
  spiffeId: string
  /** The verifier that accepted the subject token: `jwt-svid`, `oidc:<issuer>`. */
  via: string
  ttlSeconds: number
  /** The actor's SPIFFE ID for a delegated (AI agent) token. */
  actor?: string
}

/** The narrow seam src/entries and src/exchange take: throws TSR_POLICY_VIOLATION. */
export interface GovernanceGate {
  checkEntry(entry: EntryForPolicy, ctx?: { actor?: string }): Promise<void>
  checkExchange(request: ExchangeForPolicy): Promise<void>
}

export interface Governance extends GovernanceGate {
  active(): Promise<PolicyVersion | undefined>
  /** Validates and stores a new version (unchanged text: no new version), makes it active. */
  apply(
    text: string,
    options?: { by?: string; file?: string },
  ): Promise<{ version: number; changed: boolean }>
  history(): Promise<PolicyVersionSummary[]>
  get(version: number): Promise<PolicyVersion | undefined>
  diff(from: number, to: number): Promise<PolicyChange[]>
  /** Dry run: what `text` would newly flag over the current inventory, compared with the active policy. */
  test(text: string, file?: string): Promise<PolicyTestResult>
  /** Every violation of a policy (default: the active one) over the inventory and the entries, per rule. */
  evaluate(policy?: GovernancePolicy): Promise<Map<GovernanceRule, FindingInput[]>>
  /** Evaluates the active policy and reports every rule's complete findings. */
  report(reporter: FindingReporter): Promise<Record<string, FindingReportResult>>
  /** The posture rules' part of the active policy. */
  postureConfig(): Promise<PostureConfig>
}

export interface GovernanceDeps {
  store: Store
  events: EventSink
  clock?: Clock
  codeowners?: CodeownersSource
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

/** The posture configuration a policy declares (finding-types.ts PostureConfig, field for field). */
export function toPostureConfig(policy: GovernancePolicy): PostureConfig {
  return {
    ...(policy.thresholds ? { thresholds: policy.thresholds } : {}),
    ...(policy.maxTtl ? { maxTtlSeconds: policy.maxTtl as Record<string, number> } : {}),
    ...(policy.maxKeyAge ? { maxKeyAgeDays: policy.maxKeyAge as Record<string, number> } : {}),
    ...(policy.crownJewels ? { crownJewels: policy.crownJewels } : {}),
    ...(policy.forbiddenGrants ? { forbiddenGrants: policy.forbiddenGrants } : {}),
  }
}

function violationError(v: Violation, subject: string): TesseraError {
  return new TesseraError('TSR_POLICY_VIOLATION', `${v.rule}: ${v.message}; fix: ${v.fix}`, {
    details: { rule: v.rule, fix: v.fix, subject },
  })
}

/** Credential types that are static secrets (they age; certificates and JWTs expire instead). */
export const staticCredentialTypes = [
  'access_key',
  'api_key',
  'ssh_key',
  'private_key',
  'password',
  'client_secret',
  'connection_string',
  'token',
  'webhook',
]

export function createGovernance(deps: GovernanceDeps): Governance {
  const clock = deps.clock ?? systemClock
  const db = deps.store.db
  const parsed = new Map<number, GovernancePolicy>()

  type Row = {
    version: number
    body: string
    created_at: Date
    created_by: string | null
    active: boolean
  }
  const toVersion = (r: Row): PolicyVersion => {
    let policy = parsed.get(r.version)
    if (!policy) {
      policy = parsePolicy(r.body)
      parsed.set(r.version, policy)
    }
    return {
      version: r.version,
      createdAt: new Date(r.created_at).toISOString(),
      createdBy: r.created_by,
      active: r.active,
      sha256: sha(r.body),
      body: r.body,
      policy,
    }
  }
  const base = () =>
    db
      .selectFrom('policy')
      .select(['version', 'body', 'created_at', 'created_by', 'active'])
      .where('policy_type', '=', 'governance')
      .where('name', '=', governancePolicyName)

  async function active(): Promise<PolicyVersion | undefined> {
    const r = await base()
      .where('active', '=', true)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst()
    return r ? toVersion(r) : undefined
  }

  async function teamsOf(
    ownerRef: string,
  ): Promise<{ teams: string[]; status: string | undefined; ownerType?: string }> {
    const row = await db
      .selectFrom('owner')
      .select(['owner_type', 'status', 'team_ref', 'attributes'])
      .where('id', '=', entityId('owner', ownerRef))
      .where('valid_to', 'is', null)
      .executeTakeFirst()
    if (!row) return { teams: [], status: undefined }
    if (row.owner_type === 'team')
      return { teams: [ownerRef], status: row.status, ownerType: 'team' }
    const a = (row.attributes ?? {}) as Record<string, unknown>
    const teams = Array.isArray(a.teams)
      ? a.teams.filter((t): t is string => typeof t === 'string')
      : []
    if (row.team_ref && !teams.includes(row.team_ref)) teams.unshift(row.team_ref)
    return { teams, status: row.status, ownerType: 'person' }
  }

  function entryViolations(
    policy: GovernancePolicy,
    entry: EntryForPolicy,
    owner: { teams: string[]; status: string | undefined },
    actor: string | undefined,
  ): Violation[] {
    const out: (Violation | undefined)[] = [
      checkNaming(policy, 'workload', entry.spiffeId, owner.teams),
      checkSpiffeIdTemplates(policy, entry.spiffeId, owner.teams),
      // The CA's defaults apply when an entry gives no TTL (X.509 1 h, JWT 5 min).
      checkTtl(policy, 'workload', entry.x509SvidTtl ?? 3600, 'x509SvidTtl'),
      checkTtl(policy, 'workload', entry.jwtSvidTtl ?? 300, 'jwtSvidTtl'),
      checkRegistration(policy, entry.spiffeId, {
        owner: entry.owner,
        ownerTeams: owner.teams,
        ...(actor !== undefined ? { actor } : {}),
      }),
    ]
    if (policy.required?.owner) {
      if (owner.status === undefined) {
        out.push({
          rule: 'policy.required-owner',
          message: `owner ${entry.owner} is no known person or team`,
          fix: 'import the owner (tessera owner import) or name a known one',
        })
      } else if (owner.status === 'departed') {
        out.push({
          rule: 'policy.required-owner',
          message: `owner ${entry.owner} has departed`,
          fix: 'name an active owner, e.g. the team',
        })
      }
    }
    return out.filter((v): v is Violation => v !== undefined)
  }

  async function evaluate(policy?: GovernancePolicy): Promise<Map<GovernanceRule, FindingInput[]>> {
    const p = policy ?? (await active())?.policy
    const out = new Map<GovernanceRule, FindingInput[]>(governanceRules.map((r) => [r, []]))
    if (!p) return out
    const add = (f: FindingInput & { rule: GovernanceRule }) => out.get(f.rule)!.push(f)
    const now = clock.now()

    // Identities: naming, SPIFFE ID templates, owner and tags (one ownership resolution per page).
    const needOwnership = Boolean(
      p.required?.owner ||
      p.spiffeIds ||
      Object.values(p.naming ?? {}).some((n) => n?.template?.includes('{team}')),
    )
    const resolver = createOwnershipResolver({
      db,
      ...(deps.codeowners ? { codeowners: deps.codeowners } : {}),
      ...(p.ownership?.order ? { order: p.ownership.order } : {}),
    })
    const teamCache = new Map<string, string[]>()
    const teamsFor = async (o: Ownership | undefined): Promise<string[]> => {
      const ref = o?.owner?.ref
      if (!ref) return []
      let t = teamCache.get(ref)
      if (!t) teamCache.set(ref, (t = (await teamsOf(ref)).teams))
      return t
    }
    let after = '00000000-0000-0000-0000-000000000000'
    for (;;) {
      const rows = await db
        .selectFrom('identity')
        .select(['id', 'ref', 'name', 'kind', 'owner_ref', 'created_by', 'attributes'])
        .where('valid_to', 'is', null)
        .where('id', '>', after)
        .orderBy('id')
        .limit(5000)
        .execute()
      if (rows.length === 0) break
      after = rows[rows.length - 1]!.id
      const identities = rows.map((r) => ({
        ...r,
        attributes: (r.attributes ?? {}) as Record<string, unknown>,
      }))
      const ownerships = needOwnership ? await resolver.resolveMany(identities) : []
      for (const [i, identity] of identities.entries()) {
        const o = ownerships[i]
        const teams = await teamsFor(o)
        const subject = {
          subjectType: 'identity',
          subjectId: identity.id,
          subjectRef: identity.ref,
        }
        const ownerRef = o?.owner?.ref ?? identity.owner_ref ?? undefined
        const withOwner = ownerRef !== undefined ? { ownerRef } : {}
        const kind = identity.kind
        const naming = checkNaming(p, kind, namingSubject(kind, identity.name, identity.ref), teams)
        if (naming)
          add({
            ...subject,
            ...withOwner,
            rule: naming.rule,
            severity: 'low',
            evidence: { kind, name: identity.name, reason: naming.message, fix: naming.fix },
          })
        if (kind === 'workload' && identity.ref.startsWith('spiffe://')) {
          const v = checkSpiffeIdTemplates(p, identity.ref, teams)
          if (v)
            add({
              ...subject,
              ...withOwner,
              rule: v.rule,
              severity: 'medium',
              evidence: { teams, reason: v.message, fix: v.fix },
            })
        }
        if (p.required?.owner && o?.orphaned) {
          add({
            ...subject,
            ...withOwner,
            rule: 'policy.required-owner',
            severity: 'high',
            evidence: {
              reason: o.orphanReason,
              owner: o.owner?.ref ?? null,
              fix: 'assign an active owner (tessera owner assign)',
            },
          })
        }
        const missing = missingTags(p, kind, tagsOf(identity.attributes))
        if (missing.length > 0) {
          add({
            ...subject,
            ...withOwner,
            rule: 'policy.required-tags',
            severity: 'low',
            evidence: { kind, missing, fix: `tag it with ${missing.join(', ')}` },
          })
        }
      }
      if (rows.length < 5000) break
    }

    // Credential TTLs and key ages, set-based.
    const ttlKinds = Object.entries(p.maxTtl ?? {})
    if (ttlKinds.length > 0) {
      const limits = sql.join(ttlKinds.map(([k, v]) => sql`(${k}::text, ${v}::float8)`))
      const rows = await sql<{
        id: string
        ref: string
        kind: IdentityKind
        identity_id: string
        identity_ref: string
        owner_ref: string | null
        ttl: number
        max: number
      }>`
        select c.id, c.ref, i.kind, i.id as identity_id, i.ref as identity_ref, i.owner_ref,
          extract(epoch from c.expires_at - c.created_at)::float8 as ttl, l.max
        from credential c
        join identity i on i.id = c.identity_id and i.valid_to is null
        join (values ${limits}) as l(kind, max) on l.kind = i.kind
        where c.valid_to is null and c.expires_at is not null and c.created_at is not null
          and extract(epoch from c.expires_at - c.created_at) > l.max
      `.execute(db)
      for (const r of rows.rows) {
        add({
          rule: 'policy.max-ttl',
          severity: 'medium',
          subjectType: 'credential',
          subjectId: r.id,
          subjectRef: r.ref,
          ...(r.owner_ref ? { ownerRef: r.owner_ref } : {}),
          evidence: {
            identity: r.identity_ref,
            kind: r.kind,
            ttlSeconds: Math.round(r.ttl),
            maxSeconds: r.max,
            fix: `reissue it with a TTL of at most ${r.max} s`,
          },
        })
      }
    }
    const ageKinds = Object.entries(p.maxKeyAge ?? {})
    if (ageKinds.length > 0) {
      const limits = sql.join(ageKinds.map(([k, v]) => sql`(${k}::text, ${v}::float8)`))
      const rows = await sql<{
        id: string
        ref: string
        kind: IdentityKind
        identity_ref: string
        owner_ref: string | null
        age: number
        max: number
      }>`
        select c.id, c.ref, i.kind, i.ref as identity_ref, i.owner_ref,
          extract(epoch from ${now.toISOString()}::timestamptz - coalesce(c.last_rotated_at, c.created_at))::float8 / 86400 as age, l.max
        from credential c
        join identity i on i.id = c.identity_id and i.valid_to is null
        join (values ${limits}) as l(kind, max) on l.kind = i.kind
        where c.valid_to is null and c.state = 'active'
          and c.credential_type = any(${staticCredentialTypes}::text[])
          and coalesce(c.last_rotated_at, c.created_at) is not null
          and coalesce(c.last_rotated_at, c.created_at) < ${now.toISOString()}::timestamptz - make_interval(days => l.max::int)
      `.execute(db)
      for (const r of rows.rows) {
        add({
          rule: 'policy.max-key-age',
          severity: 'medium',
          subjectType: 'credential',
          subjectId: r.id,
          subjectRef: r.ref,
          ...(r.owner_ref ? { ownerRef: r.owner_ref } : {}),
          evidence: {
            identity: r.identity_ref,
            kind: r.kind,
            ageDays: Math.floor(r.age),
            maxDays: r.max,
            fix: 'rotate the key',
          },
        })
      }
    }

    if (p.forbiddenGrants?.length) {
      const f = p.forbiddenGrants
      const rows = await sql<{
        id: string
        ref: string
        identity_id: string
        identity_ref: string
        resource_ref: string
        actions: string[]
        via: string | null
        owner_ref: string | null
      }>`
        select g.id, g.ref, g.identity_id, g.identity_ref, g.resource_ref, g.actions, g.via, i.owner_ref
        from "grant" g join identity i on i.id = g.identity_id and i.valid_to is null
        where g.valid_to is null and (g.actions && ${f}::text[] or g.via = any(${f}::text[])
          or ${sql.join(
            f.map((x) => sql`g.via like ${'%/' + x}`),
            sql` or `,
          )})
      `.execute(db)
      for (const r of rows.rows) {
        const hit = forbiddenIn(p, r.actions, r.via)
        if (hit.length === 0) continue
        add({
          rule: 'policy.forbidden-grant',
          severity: 'high',
          subjectType: 'identity',
          subjectId: r.identity_id,
          subjectRef: r.identity_ref,
          dedupKey: `policy.forbidden-grant|${r.ref}`,
          ...(r.owner_ref ? { ownerRef: r.owner_ref } : {}),
          evidence: {
            resource: r.resource_ref,
            actions: r.actions,
            via: r.via,
            forbidden: hit,
            fix: 'replace the grant with the actions the identity uses',
          },
        })
      }
    }

    // Registration entries in force.
    const entries = await db
      .selectFrom('registration_entry')
      .select(['id', 'spiffe_id', 'owner_ref', 'x509_svid_ttl', 'jwt_svid_ttl', 'created_by'])
      .where('valid_to', 'is', null)
      .where('deleted', '=', false)
      .execute()
    const ownerCache = new Map<string, { teams: string[]; status: string | undefined }>()
    for (const e of entries) {
      let owner = ownerCache.get(e.owner_ref)
      if (!owner) ownerCache.set(e.owner_ref, (owner = await teamsOf(e.owner_ref)))
      const vs = entryViolations(
        p,
        {
          spiffeId: e.spiffe_id,
          owner: e.owner_ref,
          ...(e.x509_svid_ttl !== null ? { x509SvidTtl: e.x509_svid_ttl } : {}),
          ...(e.jwt_svid_ttl !== null ? { jwtSvidTtl: e.jwt_svid_ttl } : {}),
        },
        owner,
        e.created_by ?? undefined,
      )
      for (const v of vs) {
        add({
          rule: v.rule,
          severity: v.rule === 'policy.registration' ? 'high' : 'medium',
          subjectType: 'entry',
          subjectId: e.id,
          subjectRef: e.spiffe_id,
          dedupKey: `${v.rule}|entry:${e.id}|${v.message}`,
          ownerRef: e.owner_ref,
          evidence: { reason: v.message, fix: v.fix },
        })
      }
    }
    return out
  }

  const key = (f: FindingInput) => f.dedupKey ?? `${f.rule}|${f.subjectType}:${f.subjectRef}`

  return {
    active,
    async apply(text, options = {}) {
      const policy = parsePolicy(text, options.file)
      const current = await active()
      if (current && current.body === text) return { version: current.version, changed: false }
      const version = await deps.store.transaction(async (tx) => {
        await sql`select pg_advisory_xact_lock(hashtext('tessera.policy.governance'))`.execute(
          tx.db,
        )
        const last = await tx.db
          .selectFrom('policy')
          .select((eb) => eb.fn.max('version').as('v'))
          .where('policy_type', '=', 'governance')
          .where('name', '=', governancePolicyName)
          .executeTakeFirst()
        const next = Number(last?.v ?? 0) + 1
        await tx.db
          .updateTable('policy')
          .set({ active: false })
          .where('policy_type', '=', 'governance')
          .where('name', '=', governancePolicyName)
          .execute()
        await tx.db
          .insertInto('policy')
          .values({
            policy_type: 'governance',
            name: governancePolicyName,
            version: next,
            body: text,
            created_at: clock.now(),
            created_by: options.by ?? null,
            active: true,
          })
          .execute()
        return next
      })
      parsed.set(version, policy)
      await deps.events.append({
        type: 'policy.changed',
        ...(options.by ? { actor: options.by } : {}),
        resource: `policy:governance/${governancePolicyName}`,
        action: 'apply',
        data: {
          policyType: 'governance',
          version,
          previousVersion: current?.version ?? null,
          sha256: sha(text),
          changes: current ? diffPolicies(current.policy, policy).length : null,
        },
      })
      return { version, changed: true }
    },
    async history() {
      const rows = await base().orderBy('version', 'desc').execute()
      return rows.map((r) => {
        const { body: _body, policy: _policy, ...summary } = toVersion(r)
        return summary
      })
    },
    async get(version) {
      const r = await base().where('version', '=', version).executeTakeFirst()
      return r ? toVersion(r) : undefined
    },
    async diff(from, to) {
      const [a, b] = await Promise.all([this.get(from), this.get(to)])
      if (!a) throw new TesseraError('TSR_NOT_FOUND', `no policy version ${from}`)
      if (!b) throw new TesseraError('TSR_NOT_FOUND', `no policy version ${to}`)
      return diffPolicies(a.policy, b.policy)
    },
    async test(text, file) {
      const candidate = parsePolicy(text, file)
      const current = await active()
      const [next, now] = await Promise.all([
        evaluate(candidate),
        current
          ? evaluate(current.policy)
          : Promise.resolve(new Map<GovernanceRule, FindingInput[]>()),
      ])
      const flat = (m: Map<GovernanceRule, FindingInput[]>) => [...m.values()].flat()
      const before = new Set(flat(now).map(key))
      const afterKeys = new Set(flat(next).map(key))
      const totals: Record<string, number> = {}
      for (const [rule, list] of next) totals[rule] = list.length
      return {
        against: current?.version ?? null,
        newViolations: flat(next).filter((f) => !before.has(key(f))),
        resolved: flat(now).filter((f) => !afterKeys.has(key(f))),
        totals,
      }
    },
    evaluate,
    async report(reporter) {
      const found = await evaluate()
      const out: Record<string, FindingReportResult> = {}
      for (const [rule, list] of found)
        out[rule] = await reporter.report(rule, list, { complete: true })
      return out
    },
    async postureConfig() {
      const a = await active()
      return a ? toPostureConfig(a.policy) : {}
    },
    async checkEntry(entry, ctx = {}) {
      const a = await active()
      if (!a) return
      const owner = await teamsOf(entry.owner)
      const v = entryViolations(a.policy, entry, owner, ctx.actor)[0]
      if (v) throw violationError(v, entry.spiffeId)
    },
    async checkExchange(request) {
      const a = await active()
      if (!a) return
      const p = a.policy
      const kind: IdentityKind = request.actor
        ? 'ai_agent'
        : request.via.startsWith('oidc')
          ? 'ci_pipeline'
          : 'workload'
      const v =
        checkTtl(p, kind, request.ttlSeconds, 'requested token lifetime') ??
        checkNaming(p, kind, request.actor ?? request.spiffeId, []) ??
        (kind === 'ci_pipeline' ? checkPipeline(p, request.spiffeId) : undefined)
      if (v) throw violationError(v, request.spiffeId)
    },
  }
}
