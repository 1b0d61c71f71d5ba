import { sql } from 'kysely'
import type { EventSink } from '../audit/event-sink.js'
import { discardEvents } from '../audit/event-sink.js'
import { TesseraError } from '../errors.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import { cedar, formatProblem, problemOf, type PolicyProblem, type SchemaJson } from './cedar.js'
import { deriveCedarSchema } from './cedar-schema.js'

/**
 * Cedar policies, versioned in the `policy` table (`policy_type = 'cedar'`). A policy is a named
 * Cedar text (one or more statements). `add` stores a new version of a name after a parse check;
 * `activate` validates that version against the schema derived from the graph and makes it the one
 * active version of its name. Nothing is deleted: `deactivate` leaves a name with no active version.
 * Every change is a `policy.changed` event.
 */

export interface CedarPolicyVersion {
  name: string
  version: number
  active: boolean
  createdAt: string
  createdBy: string | null
}

export interface CedarPolicy extends CedarPolicyVersion {
  body: string
}

export interface ValidationResult {
  ok: boolean
  problems: PolicyProblem[]
}

export interface CedarPolicyStore {
  /** Stores a new version (parse-checked; validated too and activated when `activate`). */
  add(input: {
    name: string
    body: string
    createdBy?: string
    activate?: boolean
  }): Promise<CedarPolicy>
  /** Every version, by name then version. */
  list(): Promise<CedarPolicyVersion[]>
  /** One version; without `version` the active one, else the latest. */
  show(name: string, version?: number): Promise<CedarPolicy | undefined>
  /** Validates `version` (default the latest) against the graph's schema and activates it. */
  activate(name: string, version?: number, actor?: string): Promise<CedarPolicy>
  deactivate(name: string, actor?: string): Promise<void>
  /** Parses and validates a text against the current schema, without storing it. */
  validate(body: string, name?: string): Promise<ValidationResult>
  /** The active versions (what the authorizer evaluates). */
  active(): Promise<CedarPolicy[]>
  /** Changes whenever the set of active versions does (cheap: polled by the authorizer). */
  activeFingerprint(): Promise<string>
}

export interface CedarPolicyStoreDeps {
  store: Store
  clock?: Clock
  events?: EventSink
  /** The schema to validate against; default: derived from the graph at each validation. */
  schema?: () => Promise<SchemaJson<string>>
  /** Actions declared beside the built-in and granted ones (see cedar-schema.ts). */
  extraActions?: readonly string[]
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/
export const maxPolicyBytes = 256 * 1024

export function checkPolicyName(name: string): void {
  if (!namePattern.test(name)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `policy name ${JSON.stringify(name.slice(0, 120))} must be 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    )
  }
}

function checkBody(body: string): void {
  if (body.trim() === '') throw new TesseraError('TSR_VALIDATION', 'the policy text is empty')
  if (Buffer.byteLength(body) > maxPolicyBytes) {
    throw new TesseraError('TSR_VALIDATION', `a policy is at most ${maxPolicyBytes} bytes`)
  }
}

/** Parse problems of a Cedar text (empty when it parses). */
export function parseProblems(body: string, name?: string): PolicyProblem[] {
  const answer = cedar.checkParsePolicySet({ staticPolicies: body })
  if (answer.type !== 'success') return answer.errors.map((e) => problemOf(e, body, name))
  const parts = cedar.policySetTextToParts(body)
  if (parts.type === 'success' && parts.policy_templates.length > 0) {
    return [
      {
        ...(name !== undefined ? { policy: name } : {}),
        message: 'templates (policies with ?principal or ?resource slots) are not supported',
      },
    ]
  }
  return []
}

/** Validation problems of a Cedar text against a schema (parse problems first). */
export function validationProblems(
  body: string,
  schema: SchemaJson<string>,
  name?: string,
): PolicyProblem[] {
  const parsed = parseProblems(body, name)
  if (parsed.length > 0) return parsed
  const answer = cedar.validate({ schema, policies: { staticPolicies: body } })
  if (answer.type === 'failure') return answer.errors.map((e) => problemOf(e, undefined, name))
  return answer.validationErrors.map((v) => problemOf(v.error, body, name))
}

function invalid(what: string, problems: PolicyProblem[]): TesseraError {
  return new TesseraError(
    'TSR_POLICY_INVALID',
    `${what}: ${problems.map(formatProblem).slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`,
    { details: { errors: problems } },
  )
}

export function createCedarPolicyStore(deps: CedarPolicyStoreDeps): CedarPolicyStore {
  const db = deps.store.db
  const clock = deps.clock ?? systemClock
  const events = deps.events ?? discardEvents
  const schemaOf =
    deps.schema ??
    (() =>
      deriveCedarSchema(deps.store, deps.extraActions ? { extraActions: deps.extraActions } : {}))

  const view = (row: {
    name: string
    version: number
    active: boolean
    created_at: Date
    created_by: string | null
    body: string
  }): CedarPolicy => ({
    name: row.name,
    version: row.version,
    active: row.active,
    createdAt: new Date(row.created_at).toISOString(),
    createdBy: row.created_by,
    body: row.body,
  })

  const cedarPolicies = () => db.selectFrom('policy').where('policy_type', '=', 'cedar')

  const policyStore: CedarPolicyStore = {
    async add(input) {
      checkPolicyName(input.name)
      checkBody(input.body)
      const problems = parseProblems(input.body, input.name)
      if (problems.length > 0) throw invalid(`policy ${input.name} does not parse`, problems)
      const row = await deps.store.transaction(async ({ db: tx }) => {
        // One writer per name at a time, so two adds never pick the same version.
        await sql`select pg_advisory_xact_lock(hashtext(${'cedar-policy:' + input.name}))`.execute(
          tx,
        )
        const latest = await tx
          .selectFrom('policy')
          .select((eb) => eb.fn.max('version').as('v'))
          .where('policy_type', '=', 'cedar')
          .where('name', '=', input.name)
          .executeTakeFirst()
        return tx
          .insertInto('policy')
          .values({
            policy_type: 'cedar',
            name: input.name,
            version: Number(latest?.v ?? 0) + 1,
            body: input.body,
            created_at: clock.now(),
            created_by: input.createdBy ?? null,
            active: false,
          })
          .returningAll()
          .executeTakeFirstOrThrow()
      })
      await events.append({
        type: 'policy.changed',
        actor: input.createdBy ?? 'system',
        resource: `cedar:${row.name}@${row.version}`,
        action: 'add',
        data: { policyType: 'cedar', name: row.name, version: row.version },
      })
      if (input.activate) return policyStore.activate(row.name, row.version, input.createdBy)
      return view(row)
    },

    async list() {
      const rows = await cedarPolicies()
        .select(['name', 'version', 'active', 'created_at', 'created_by'])
        .orderBy('name')
        .orderBy('version')
        .execute()
      return rows.map((r) => {
        const { body: _, ...rest } = view({ ...r, body: '' })
        return rest
      })
    },

    async show(name, version) {
      checkPolicyName(name)
      let q = cedarPolicies().selectAll().where('name', '=', name)
      if (version !== undefined) q = q.where('version', '=', version)
      else q = q.orderBy('active', 'desc').orderBy('version', 'desc')
      const row = await q.limit(1).executeTakeFirst()
      return row ? view(row) : undefined
    },

    async activate(name, version, actor) {
      checkPolicyName(name)
      let q = cedarPolicies().selectAll().where('name', '=', name)
      q = version !== undefined ? q.where('version', '=', version) : q.orderBy('version', 'desc')
      const row = await q.limit(1).executeTakeFirst()
      if (!row) {
        throw new TesseraError(
          'TSR_NOT_FOUND',
          `no Cedar policy ${name}${version === undefined ? '' : ` version ${version}`}`,
        )
      }
      return activateRow(view(row), actor)
    },

    async deactivate(name, actor) {
      checkPolicyName(name)
      const changed = await db
        .updateTable('policy')
        .set({ active: false })
        .where('policy_type', '=', 'cedar')
        .where('name', '=', name)
        .where('active', '=', true)
        .returning('version')
        .execute()
      const exists = await cedarPolicies().select('id').where('name', '=', name).executeTakeFirst()
      if (!exists) throw new TesseraError('TSR_NOT_FOUND', `no Cedar policy ${name}`)
      if (changed.length > 0) {
        await events.append({
          type: 'policy.changed',
          actor: actor ?? 'system',
          resource: `cedar:${name}`,
          action: 'deactivate',
          data: { policyType: 'cedar', name, versions: changed.map((c) => c.version) },
        })
      }
    },

    async validate(body, name) {
      checkBody(body)
      const problems = validationProblems(body, await schemaOf(), name)
      return { ok: problems.length === 0, problems }
    },

    async active() {
      const rows = await cedarPolicies()
        .selectAll()
        .where('active', '=', true)
        .orderBy('name')
        .execute()
      return rows.map(view)
    },

    async activeFingerprint() {
      const r = await sql<{ f: string | null }>`
        select string_agg(id::text, ',' order by id) as f from policy
        where policy_type = 'cedar' and active`.execute(db)
      return r.rows[0]?.f ?? ''
    },
  }

  async function activateRow(target: CedarPolicy, actor: string | undefined): Promise<CedarPolicy> {
    const problems = validationProblems(target.body, await schemaOf(), target.name)
    if (problems.length > 0) {
      throw invalid(
        `policy ${target.name} version ${target.version} does not validate against the graph's schema`,
        problems,
      )
    }
    await deps.store.transaction(async ({ db: tx }) => {
      await sql`select pg_advisory_xact_lock(hashtext(${'cedar-policy:' + target.name}))`.execute(
        tx,
      )
      await tx
        .updateTable('policy')
        .set({ active: false })
        .where('policy_type', '=', 'cedar')
        .where('name', '=', target.name)
        .where('version', '<>', target.version)
        .execute()
      await tx
        .updateTable('policy')
        .set({ active: true })
        .where('policy_type', '=', 'cedar')
        .where('name', '=', target.name)
        .where('version', '=', target.version)
        .execute()
    })
    await events.append({
      type: 'policy.changed',
      actor: actor ?? 'system',
      resource: `cedar:${target.name}@${target.version}`,
      action: 'activate',
      data: { policyType: 'cedar', name: target.name, version: target.version },
    })
    return { ...target, active: true }
  }

  return policyStore
}
