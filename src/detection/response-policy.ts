import { TesseraError } from '../errors.js'
import type { EventSink } from '../audit/event-sink.js'
import { globMatches } from '../inventory/usage/granted-but-unused.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Anomaly, Responder, ResponderOutcome } from './responder.js'
import type { ReasonFeature } from './scoring.js'

/**
 * Policy-defined thresholds: which responders fire for which anomalies. A rule matches an anomaly
 * whose score is at least `minScore`, whose identity matches one of `identities` (globs; all when
 * omitted) and, when `features` is given, one of whose reasons is of those features.
 */
export interface ResponseRule {
  name: string
  minScore: number
  responders: string[]
  identities?: string[]
  features?: ReasonFeature[]
}

export interface ResponsePolicy {
  rules: ResponseRule[]
  /** One firing per identity, rule and responder within this window (default 15 min). */
  cooldownMs: number
}

const features: readonly ReasonFeature[] = [
  'action',
  'resource',
  'pair',
  'spread',
  'address',
  'node',
  'hour',
  'rate',
]

/**
 * Reads the `rules` part of a detection config file (docs/detection.md). Every problem is reported
 * at once, as TSR_CONFIG; `knownResponders` are the responder names configured.
 */
export function parseResponsePolicy(
  value: unknown,
  knownResponders: readonly string[],
): ResponsePolicy {
  const problems: string[] = []
  const obj = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {}
  if (typeof value !== 'object' || value === null) problems.push('the policy must be an object')
  const rules: ResponseRule[] = []
  const list = obj.rules ?? []
  if (!Array.isArray(list)) problems.push('rules must be a list')
  else
    list.forEach((r: unknown, i) => {
      const at = `rules[${i}]`
      if (typeof r !== 'object' || r === null) return void problems.push(`${at} must be an object`)
      const o = r as Record<string, unknown>
      for (const k of Object.keys(o)) {
        if (!['name', 'minScore', 'responders', 'identities', 'features'].includes(k)) {
          problems.push(`${at}.${k} is not a rule field`)
        }
      }
      const name = typeof o.name === 'string' && o.name.length > 0 ? o.name : `rule-${i + 1}`
      const minScore = o.minScore
      if (typeof minScore !== 'number' || !(minScore >= 0 && minScore <= 1)) {
        problems.push(`${at}.minScore must be a number from 0 to 1`)
      }
      const responders = o.responders
      if (!Array.isArray(responders) || responders.length === 0) {
        problems.push(`${at}.responders must be a non-empty list`)
      } else {
        for (const n of responders) {
          if (typeof n !== 'string' || !knownResponders.includes(n)) {
            problems.push(
              `${at}.responders: ${JSON.stringify(n)} is not a configured responder (${knownResponders.join(', ') || 'none'})`,
            )
          }
        }
      }
      const strList = (v: unknown, field: string): string[] | undefined => {
        if (v === undefined) return undefined
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
          problems.push(`${at}.${field} must be a list of strings`)
          return undefined
        }
        return v as string[]
      }
      const identities = strList(o.identities, 'identities')
      const feats = strList(o.features, 'features')
      for (const f of feats ?? []) {
        if (!features.includes(f as ReasonFeature)) {
          problems.push(`${at}.features: ${JSON.stringify(f)} is not one of ${features.join(', ')}`)
        }
      }
      rules.push({
        name,
        minScore: typeof minScore === 'number' ? minScore : 1,
        responders: Array.isArray(responders) ? (responders as string[]) : [],
        ...(identities ? { identities } : {}),
        ...(feats ? { features: feats as ReasonFeature[] } : {}),
      })
    })
  const cooldown = obj.cooldownSeconds ?? 900
  if (typeof cooldown !== 'number' || !(cooldown >= 0))
    problems.push('cooldownSeconds must be a number ≥ 0')
  if (problems.length > 0) {
    throw new TesseraError('TSR_CONFIG', `detection policy: ${problems.join('; ')}`, {
      details: { problems },
    })
  }
  return { rules, cooldownMs: (cooldown as number) * 1000 }
}

export interface Firing {
  rule: string
  responder: string
  outcome: ResponderOutcome
}

export interface ResponseEngine {
  /** Fires the responders of every matching rule; each firing is appended as `responder.fired`. */
  handle(anomaly: Anomaly): Promise<Firing[]>
}

export function createResponseEngine(deps: {
  policy: ResponsePolicy
  responders: readonly Responder[]
  events: EventSink
  clock?: Clock
}): ResponseEngine {
  const clock = deps.clock ?? systemClock
  const byName = new Map(deps.responders.map((r) => [r.name, r]))
  const lastFired = new Map<string, number>()
  return {
    async handle(anomaly) {
      const firings: Firing[] = []
      const now = clock.now().getTime()
      for (const rule of deps.policy.rules) {
        if (anomaly.score < rule.minScore) continue
        if (rule.identities && !rule.identities.some((g) => globMatches(g, anomaly.identity)))
          continue
        if (rule.features && !anomaly.reasons.some((r) => rule.features!.includes(r.feature)))
          continue
        for (const name of rule.responders) {
          const responder = byName.get(name)
          if (!responder) continue
          const key = `${anomaly.identity}\u0000${rule.name}\u0000${name}`
          const prev = lastFired.get(key)
          if (prev !== undefined && now - prev < deps.policy.cooldownMs) continue
          lastFired.set(key, now)
          let outcome: ResponderOutcome
          try {
            outcome = await responder.respond(anomaly)
          } catch (err) {
            outcome = { status: 'failed', detail: (err as Error).message }
          }
          firings.push({ rule: rule.name, responder: name, outcome })
          await deps.events.append({
            type: 'responder.fired',
            actor: 'detection',
            subject: anomaly.identity,
            ...(anomaly.event.resource ? { resource: anomaly.event.resource } : {}),
            action: responder.kind,
            data: {
              responder: name,
              kind: responder.kind,
              rule: rule.name,
              score: Number(anomaly.score.toFixed(3)),
              explanation: anomaly.explanation,
              finding: anomaly.findingKey,
              status: outcome.status,
              ...(outcome.detail ? { detail: outcome.detail } : {}),
              ...(outcome.data ? { result: outcome.data } : {}),
              ...(anomaly.event.seq !== undefined ? { eventSeq: anomaly.event.seq } : {}),
            },
          })
        }
      }
      return firings
    },
  }
}
