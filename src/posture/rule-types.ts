import type { Kysely, RawBuilder } from 'kysely'
import type { Database } from '../store/index.js'
import type { FindingInput, PostureConfig, Severity } from './finding-types.js'

/** A numeric knob of a rule, read from `PostureConfig.thresholds[ruleId][name]`. */
export interface RuleThreshold {
  default: number
  description: string
}

/** What a rule's query is given: the instant it judges at, and the configuration. */
export interface RuleContext {
  now: Date
  config: PostureConfig
  /** The rule's threshold: the configured value, else the documented default. */
  threshold(name: string): number
}

/**
 * The rows a set-based rule selects, one per finding, with exactly these columns: `severity`,
 * `subject_type`, `subject_id` (uuid or null), `subject_ref`, `owner_ref`, `identity_id` (the
 * identity the finding weighs on, for risk scores) and `evidence` (jsonb). `subject_ref` must be
 * unique within the rule: it is the finding's identity.
 */
export type FindingRowsQuery = RawBuilder<unknown>

/**
 * One posture rule: an id, a severity, texts for humans, and either a set-based query the finding
 * store runs in the database (`query`) or an evaluation in batches (`evaluate`) for walks.
 */
export interface PostureRule {
  readonly id: string
  readonly severity: Severity
  readonly title: string
  readonly description: string
  readonly remediation: string
  readonly thresholds: Readonly<Record<string, RuleThreshold>>
  query?(ctx: RuleContext): FindingRowsQuery
  evaluate?(db: Kysely<Database>, ctx: RuleContext): Promise<FindingInput[]>
}

export const severityWeights: Record<Severity, number> = {
  info: 0,
  low: 1,
  medium: 3,
  high: 6,
  critical: 10,
}

export function ruleContext(rule: PostureRule, now: Date, config: PostureConfig): RuleContext {
  return {
    now,
    config,
    threshold(name) {
      const configured = config.thresholds?.[rule.id]?.[name]
      if (configured !== undefined) return configured
      const known = rule.thresholds[name]
      if (known === undefined) throw new Error(`rule ${rule.id} has no threshold ${name}`)
      return known.default
    },
  }
}
