import { randomUUID } from 'node:crypto'
import type { EventSink } from '../audit/event-sink.js'
import { discardEvents } from '../audit/event-sink.js'
import { TesseraError, isTesseraError } from '../errors.js'
import {
  createDenyListMatcher,
  type RevocationList,
  type RevocationView,
} from '../lifecycle/revocations.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { TrustBundle } from '../spiffe/types.js'
import { cedar, type CedarValueJson, type EntityJson } from './cedar.js'
import { createDecisionEventBatcher } from './decision-events.js'
import { entityType, type EntityCache } from './entities.js'
import type { CedarPolicy, CedarPolicyStore } from './policy-store.js'
import { resolvePrincipal, type PrincipalInput, type ResolvedPrincipal } from './principal.js'

/**
 * Cedar authorization (DESIGN §4): `authorize({ principal, action, resource, context })` resolves
 * and verifies the principal, checks the deny-list (which wins over every policy), builds the
 * entities from the graph (cached) and the context, and evaluates the active Cedar policies. Every
 * decision becomes an `authz.decision` event.
 *
 * Hot path: nothing touches the store. The deny-list, the active policies, the graph version and
 * the trust bundles are refreshed together at most every `refreshMs` (default 1 s); the request
 * that finds them older waits for the refresh, so a revocation applies within `refreshMs` of being
 * written, on every replica. Policies are compiled once per change into one pre-parsed Cedar policy
 * set per action (a policy constrained to other actions cannot decide), so a request is evaluated
 * against the policies that can apply to its action only.
 */

/** Context keys a caller may give (the rest is derived; see docs/authorization.md). */
export interface RequestContext {
  namespace?: string
  environment?: string
  selectors?: string[]
  sourceNode?: string
  sourceAddress?: string
  intent?: string
  /** Actors, current first; only for a principal given as a SPIFFE ID (a token brings its own). */
  delegationChain?: string[]
}

export interface AuthzRequest {
  principal: PrincipalInput
  action: string
  resource: string
  context?: RequestContext
}

export interface AuthzError {
  /** The policy whose evaluation failed, when the error is a policy's. */
  policy?: string
  message: string
}

export interface AuthzDecision {
  decision: 'allow' | 'deny'
  /** Ids of the policies that decided (`name@version`, `name@version#statement`). */
  determiningPolicies: string[]
  errors: AuthzError[]
  decisionId: string
  /** The principal the decision is about, once verified. */
  principal?: string
  /** Why a deny did not come from the policies: the deny-list, or an unverifiable principal. */
  reason?: {
    code: 'revoked' | 'principal_invalid'
    message: string
    revocation?: Pick<RevocationView, 'id' | 'targetType' | 'value' | 'reason'>
  }
}

export interface AuthorizeOptions {
  /** Evaluate as of this instant (tests, `authz test`); default the clock's now. */
  at?: Date
  /** Wait until the decision event is durable (the HTTP route does; default false). */
  durable?: boolean
}

export interface Authorizer {
  authorize(request: AuthzRequest, options?: AuthorizeOptions): Promise<AuthzDecision>
  authorizeBatch(
    requests: readonly AuthzRequest[],
    options?: AuthorizeOptions,
  ): Promise<AuthzDecision[]>
  /** Refreshes the deny-list, policies, graph version and bundles now. */
  refresh(): Promise<void>
  /** Drops cached entities (the next decisions read the graph again). */
  invalidate(): void
  /** Waits until every decision event so far is durable. */
  flush(): Promise<void>
}

export interface AuthorizerDeps {
  policies: Pick<CedarPolicyStore, 'active' | 'activeFingerprint'>
  entities: EntityCache
  revocations: Pick<RevocationList, 'list'>
  events?: EventSink
  clock?: Clock
  /** Trust bundles by trust domain, for JWT-SVIDs and X.509-SVIDs (refreshed with the rest). */
  bundles?: () => Promise<ReadonlyMap<string, TrustBundle>>
  /** Audience a JWT principal must name when the request gives none. */
  jwtAudience?: string
  /** Longest staleness of deny-list, policies, graph and bundles, ms (default 1000). */
  refreshMs?: number
  /** A decision event batch could not be appended. */
  onEventError?: (err: unknown, lost: number) => void
}

export const maxBatchRequests = 1000
const maxString = 1024
const maxSelectors = 64
const maxChain = 16
const contextFields = new Set([
  'namespace',
  'environment',
  'selectors',
  'sourceNode',
  'sourceAddress',
  'intent',
  'delegationChain',
])

let instances = 0

interface CompiledPolicies {
  byAction: Map<string, string>
  fallback: string
  count: number
  usage: AttributeUsage
}

/**
 * The attribute names the active policies read (`x.name`, `x has name`). An entity or context
 * attribute no policy names cannot change a decision, so it is not sent to the engine: copying
 * values into the engine is most of a decision's cost. A record used whole (compared, or a `context`
 * passed on) turns the pruning of that record off.
 */
export interface AttributeUsage {
  names: Set<string>
  wholeContext: boolean
  wholeRecords: boolean
}

/** Reads the attribute usage of policy statements (Cedar's JSON form). */
export function attributeUsage(texts: readonly string[]): AttributeUsage {
  const usage: AttributeUsage = { names: new Set(), wholeContext: false, wholeRecords: false }
  const walk = (node: unknown, parent: string | undefined): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n, parent)
      return
    }
    if (typeof node !== 'object' || node === null) return
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if ((key === '.' || key === 'has') && typeof value === 'object' && value !== null) {
        const v = value as { left?: unknown; attr?: unknown }
        const attrs = Array.isArray(v.attr) ? v.attr : [v.attr]
        for (const a of attrs) if (typeof a === 'string') usage.names.add(a)
        // `x.attributes` handed to anything but another access is a record used whole.
        if (key === '.' && parent !== '.' && parent !== 'has' && v.attr === 'attributes') {
          usage.wholeRecords = true
        }
        walk(v.left, key)
      } else if (key === 'Var') {
        if (value === 'context' && parent !== '.' && parent !== 'has') usage.wholeContext = true
      } else walk(value, key)
    }
  }
  for (const text of texts) {
    const json = cedar.policyToJson(text)
    if (json.type !== 'success') continue
    walk(json.json.conditions, undefined)
  }
  return usage
}

/** An entity with only the attributes the policies read. */
function pruneEntity(e: EntityJson, usage: AttributeUsage): EntityJson {
  const attrs: Record<string, CedarValueJson> = {}
  for (const [k, v] of Object.entries(e.attrs)) {
    if (!usage.names.has(k)) continue
    if (k === 'attributes' && !usage.wholeRecords && typeof v === 'object' && v !== null) {
      const inner: Record<string, CedarValueJson> = {}
      for (const [ik, iv] of Object.entries(v as Record<string, CedarValueJson>)) {
        if (usage.names.has(ik)) inner[ik] = iv
      }
      attrs[k] = inner
    } else attrs[k] = v
  }
  return { uid: e.uid, attrs, parents: e.parents }
}

/** A statement of a stored policy: its id and text. */
export interface PolicyStatement {
  id: string
  text: string
  /** Action ids it is limited to; undefined: every action. */
  actions?: string[]
}

/** Splits stored policies into statements with stable ids, and reads their action scope. */
export function policyStatements(policies: readonly CedarPolicy[]): PolicyStatement[] {
  const out: PolicyStatement[] = []
  for (const p of policies) {
    const parts = cedar.policySetTextToParts(p.body)
    if (parts.type !== 'success') {
      throw new TesseraError('TSR_POLICY_INVALID', `active policy ${p.name} does not parse`)
    }
    // Cedar returns the statements sorted by its own ids; put them back in text order.
    const texts = parts.policies
      .map((text) => ({ text, at: p.body.indexOf(text) }))
      .sort((a, b) => a.at - b.at)
      .map((s) => s.text)
    const base = `${p.name}@${p.version}`
    texts.forEach((text, k) => {
      const json = cedar.policyToJson(text)
      if (json.type !== 'success') {
        throw new TesseraError('TSR_POLICY_INVALID', `active policy ${p.name} does not parse`)
      }
      const label = json.json.annotations?.id
      const id = texts.length === 1 && label === undefined ? base : `${base}#${label ?? k}`
      const a = json.json.action
      let actions: string[] | undefined
      if (a.op === '==' && 'entity' in a) actions = [uidId(a.entity)]
      else if (a.op === 'in') {
        actions = 'entities' in a ? a.entities.map(uidId) : [uidId(a.entity)]
      }
      out.push({ id, text, ...(actions ? { actions } : {}) })
    })
  }
  return out
}

function uidId(uid: unknown): string {
  const u = uid as { __entity?: { id: string }; id?: string }
  return u.__entity?.id ?? u.id ?? ''
}

export function createAuthorizer(deps: AuthorizerDeps): Authorizer {
  const clock = deps.clock ?? systemClock
  const refreshMs = deps.refreshMs ?? 1000
  const instance = ++instances
  const batcher = createDecisionEventBatcher({
    sink: deps.events ?? discardEvents,
    ...(deps.onEventError ? { onError: deps.onEventError } : {}),
  })
  const denyList = createDenyListMatcher()
  let compiled: CompiledPolicies | undefined
  let fingerprint: string | undefined
  let bundles: ReadonlyMap<string, TrustBundle> = new Map()
  let lastRefresh = -Infinity
  // Pruned entity lists by bundle, for the compiled policies they were pruned for.
  let pruned = new WeakMap<object, EntityJson[]>()
  const prunedOf = (bundle: { entities: EntityJson[] }, usage: AttributeUsage) => {
    let list = pruned.get(bundle)
    if (list === undefined) {
      list = bundle.entities.map((e) => pruneEntity(e, usage))
      pruned.set(bundle, list)
    }
    return list
  }
  let refreshing: Promise<void> | undefined

  function compile(policies: readonly CedarPolicy[]): CompiledPolicies {
    const statements = policyStatements(policies)
    const everyAction: Record<string, string> = {}
    const perAction = new Map<string, Record<string, string>>()
    for (const s of statements) {
      if (s.actions === undefined) everyAction[s.id] = s.text
      else
        for (const a of s.actions) {
          let set = perAction.get(a)
          if (!set) perAction.set(a, (set = {}))
          set[s.id] = s.text
        }
    }
    const preparse = (key: string, set: Record<string, string>) => {
      const id = `tessera-authz-${instance}:${key}`
      const answer = cedar.preparsePolicySet(id, { staticPolicies: set })
      if (answer.type !== 'success') {
        throw new TesseraError(
          'TSR_POLICY_INVALID',
          `the active policies do not parse: ${answer.errors.map((e) => e.message).join('; ')}`,
        )
      }
      return id
    }
    const byAction = new Map<string, string>()
    let n = 0
    for (const [action, set] of perAction) {
      byAction.set(action, preparse(`a${n++}`, { ...everyAction, ...set }))
    }
    return {
      byAction,
      fallback: preparse('*', everyAction),
      count: statements.length,
      usage: attributeUsage(statements.map((st) => st.text)),
    }
  }

  async function doRefresh(): Promise<void> {
    const started = clock.now().getTime()
    const [page, fp, fresh] = await Promise.all([
      syncDenyList(),
      deps.policies.activeFingerprint(),
      deps.bundles ? deps.bundles() : Promise.resolve(undefined),
      deps.entities.checkVersion(),
    ])
    void page
    if (fresh) bundles = fresh
    if (fp !== fingerprint || compiled === undefined) {
      compiled = compile(await deps.policies.active())
      pruned = new WeakMap()
      fingerprint = fp
    }
    lastRefresh = started
  }

  async function syncDenyList(): Promise<void> {
    for (;;) {
      const page = await deps.revocations.list({ after: denyList.latest, limit: 10_000 })
      denyList.apply(page.items)
      if (page.items.length < 10_000) return
    }
  }

  function refresh(): Promise<void> {
    refreshing ??= doRefresh().finally(() => {
      refreshing = undefined
    })
    return refreshing
  }

  async function ensureFresh(now: number): Promise<void> {
    if (now - lastRefresh >= refreshMs || compiled === undefined) await refresh()
  }

  function checkContext(context: unknown): RequestContext {
    if (context === undefined) return {}
    if (typeof context !== 'object' || context === null || Array.isArray(context)) {
      throw new TesseraError('TSR_VALIDATION', 'context is an object')
    }
    const c = context as Record<string, unknown>
    for (const key of Object.keys(c)) {
      if (!contextFields.has(key)) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `context key ${JSON.stringify(key.slice(0, 60))} is not one a caller gives (${[...contextFields].join(', ')}); the others are derived`,
        )
      }
      const v = c[key]
      if (key === 'selectors' || key === 'delegationChain') {
        const max = key === 'selectors' ? maxSelectors : maxChain
        if (
          !Array.isArray(v) ||
          v.length > max ||
          !v.every((s) => typeof s === 'string' && s !== '' && s.length <= maxString)
        ) {
          throw new TesseraError(
            'TSR_VALIDATION',
            `context.${key} is a list of at most ${max} non-empty strings`,
          )
        }
      } else if (typeof v !== 'string' || v.length > maxString) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `context.${key} is a string of at most ${maxString} characters`,
        )
      }
    }
    return c as RequestContext
  }

  function checkRequest(req: AuthzRequest): void {
    if (typeof req !== 'object' || req === null) {
      throw new TesseraError('TSR_VALIDATION', 'a request is an object')
    }
    for (const field of ['action', 'resource'] as const) {
      const v = req[field]
      if (typeof v !== 'string' || v === '' || v.length > 2048) {
        throw new TesseraError('TSR_VALIDATION', `${field} is a string of 1 to 2048 characters`)
      }
    }
  }

  function deniedBy(p: ResolvedPrincipal, now: Date): RevocationView | undefined {
    const spiffe = p.id.startsWith('spiffe://') ? p.id : undefined
    const hit = denyList.denies(
      {
        ...(spiffe ? { spiffeId: spiffe } : {}),
        ...(p.jti ? { jti: p.jti } : {}),
        ...(p.serial ? { serial: p.serial } : {}),
      },
      now,
    )
    if (hit) return hit
    for (const actor of p.chain) {
      const a = denyList.denies({ spiffeId: actor }, now)
      if (a) return a
    }
    return undefined
  }

  function cedarContext(
    p: ResolvedPrincipal,
    given: RequestContext,
    selectors: string[],
    identityEnvironment: string | undefined,
    now: Date,
    usage: AttributeUsage,
  ): Record<string, CedarValueJson> {
    const chain = p.chain
    const ctx: Record<string, CedarValueJson> = {}
    const put = (key: string, value: CedarValueJson | undefined) => {
      if (value !== undefined && (usage.wholeContext || usage.names.has(key))) ctx[key] = value
    }
    put('selectors', given.selectors ?? selectors)
    if (usage.wholeContext || usage.names.has('time')) {
      ctx.time = { __extn: { fn: 'datetime', arg: now.toISOString() } }
    }
    put('hour', now.getUTCHours())
    put('weekday', now.getUTCDay())
    put('delegationChain', chain)
    put('delegationDepth', chain.length)
    put('delegated', chain.length > 0)
    put('scopes', p.scopes)
    put('presentedAs', p.presentedAs)
    put('trustDomain', p.trustDomain)
    // Derived from a verified SPIFFE ID, the namespace wins over what the caller says.
    put('namespace', p.namespace ?? given.namespace)
    put('environment', given.environment ?? identityEnvironment)
    put('sourceNode', given.sourceNode)
    put('sourceAddress', given.sourceAddress)
    // A signed intent (the token's) wins over a declared one.
    put('intent', p.intent ?? given.intent)
    put('actor', chain[0])
    return ctx
  }

  async function decide(req: AuthzRequest, now: Date): Promise<AuthzDecision> {
    const decisionId = randomUUID()
    checkRequest(req)
    const given = checkContext(req.context)
    let principal: ResolvedPrincipal
    try {
      principal = resolvePrincipal(req.principal, now, {
        bundles: () => bundles,
        defaultAudience: deps.jwtAudience ?? 'tessera-authz',
      })
    } catch (err) {
      if (
        isTesseraError(err, 'TSR_JWT_SVID_INVALID') ||
        isTesseraError(err, 'TSR_X509_SVID_INVALID')
      ) {
        return {
          decision: 'deny',
          determiningPolicies: [],
          errors: [],
          decisionId,
          reason: { code: 'principal_invalid', message: err.message },
        }
      }
      throw err
    }
    if (given.delegationChain !== undefined) {
      if (principal.presentedAs !== 'spiffe_id' && principal.presentedAs !== 'identity_ref') {
        throw new TesseraError(
          'TSR_VALIDATION',
          'context.delegationChain is given only with a SPIFFE ID principal; a token brings its own act chain',
        )
      }
      principal = { ...principal, chain: given.delegationChain }
    }
    const revoked = deniedBy(principal, now)
    if (revoked) {
      return {
        decision: 'deny',
        determiningPolicies: [],
        errors: [],
        decisionId,
        principal: principal.id,
        reason: {
          code: 'revoked',
          message: `${revoked.targetType} ${revoked.value} is on the deny-list${revoked.reason ? `: ${revoked.reason}` : ''}`,
          revocation: {
            id: revoked.id,
            targetType: revoked.targetType,
            value: revoked.value,
            reason: revoked.reason,
          },
        },
      }
    }
    const [pb, rb] = await Promise.all([
      deps.entities.principal(principal.id),
      deps.entities.resource(req.resource),
    ])
    const policies = compiled!
    const setId = policies.byAction.get(req.action) ?? policies.fallback
    const entities: EntityJson[] = prunedOf(pb, policies.usage).concat(prunedOf(rb, policies.usage))
    const answer = cedar.statefulIsAuthorized({
      principal: pb.uid,
      action: { type: entityType.action, id: req.action },
      resource: rb.uid,
      context: cedarContext(principal, given, pb.selectors, pb.environment, now, policies.usage),
      preparsedPolicySetId: setId,
      entities,
    })
    if (answer.type === 'failure') {
      return {
        decision: 'deny',
        determiningPolicies: [],
        errors: answer.errors.map((e) => ({ message: e.message })),
        decisionId,
        principal: principal.id,
      }
    }
    const { decision, diagnostics } = answer.response
    return {
      decision,
      determiningPolicies: diagnostics.reason,
      errors: diagnostics.errors.map((e) => ({ policy: e.policyId, message: e.error.message })),
      decisionId,
      principal: principal.id,
    }
  }

  function record(req: AuthzRequest, d: AuthzDecision, now: Date): Promise<void> {
    const actor = d.principal ?? '(unverified)'
    const context = (req.context ?? {}) as RequestContext
    return batcher.push({
      type: 'authz.decision',
      actor,
      subject: actor,
      resource: req.resource,
      action: req.action,
      decision: d.decision,
      at: now,
      data: {
        decisionId: d.decisionId,
        determiningPolicies: d.determiningPolicies,
        ...(d.errors.length > 0 ? { errors: d.errors } : {}),
        ...(d.reason ? { reason: d.reason } : {}),
        ...(context.intent !== undefined ? { intent: context.intent } : {}),
        ...(context.sourceNode !== undefined ? { sourceNode: context.sourceNode } : {}),
        ...(typeof req.principal === 'object' ? { presentedAs: req.principal.type } : {}),
      },
    })
  }

  async function one(req: AuthzRequest, options: AuthorizeOptions): Promise<AuthzDecision> {
    const now = options.at ?? clock.now()
    const d = await decide(req, now)
    const written = record(req, d, now)
    if (options.durable) await written
    else written.catch(() => {}) // reported through onEventError
    return d
  }

  return {
    async authorize(request, options = {}) {
      await ensureFresh(clock.now().getTime())
      return one(request, options)
    },
    async authorizeBatch(requests, options = {}) {
      if (requests.length > maxBatchRequests) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `a batch holds at most ${maxBatchRequests} requests`,
        )
      }
      await ensureFresh(clock.now().getTime())
      const now = options.at ?? clock.now()
      const decisions: AuthzDecision[] = []
      for (const [k, r] of requests.entries()) {
        try {
          decisions.push(await decide(r, now))
        } catch (err) {
          if (isTesseraError(err, 'TSR_VALIDATION')) {
            throw new TesseraError('TSR_VALIDATION', `requests[${k}]: ${err.message}`, {
              details: { index: k },
            })
          }
          throw err
        }
      }
      const written = decisions.map((d, k) => record(requests[k]!, d, now))
      if (options.durable) await Promise.all(written)
      else for (const w of written) w.catch(() => {})
      return decisions
    },
    refresh: () => refresh(),
    invalidate: () => deps.entities.invalidate(),
    flush: () => batcher.flush(),
  }
}
