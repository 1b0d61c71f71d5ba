import { performance } from 'node:perf_hooks'
import { TesseraError } from '../errors.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Store } from '../store/index.js'
import { createFindingStore, type FindingStore } from './finding-store.js'
import type { PostureConfig, Severity } from './finding-types.js'
import { computeRiskScores, listRiskScores, type RiskScoreView } from './risk.js'
import { ruleContext, type PostureRule } from './rule-types.js'
import { builtinRules } from './rules/index.js'

export interface RuleInfo {
  id: string
  severity: Severity
  title: string
  description: string
  remediation: string
  thresholds: Record<string, { default: number; value: number; description: string }>
}

export interface RuleRunResult {
  rule: string
  severity: Severity
  /** Findings the rule sees now (opened + updated). */
  found: number
  opened: number
  updated: number
  resolved: number
  ms: number
}

export interface PostureRunResult {
  startedAt: string
  rules: RuleRunResult[]
  /** Identities given a risk score. */
  riskScores: number
  ms: number
}

export interface PostureRunOptions {
  /** Only these rule ids (default: every rule). */
  rules?: readonly string[]
  /** Called before each rule and once at the end (`done === total`). */
  onProgress?: (p: { done: number; total: number; rule?: string }) => void
}

export interface Posture {
  rules(): RuleInfo[]
  /** Evaluates the rules over the current graph, then recomputes risk scores. */
  run(options?: PostureRunOptions): Promise<PostureRunResult>
  riskScores(options?: { owner?: string; limit?: number }): Promise<RiskScoreView[]>
  readonly findings: FindingStore
}

export interface PostureDeps {
  store: Store
  clock?: Clock
  /** The finding store to report into (default: one over `store`). */
  findings?: FindingStore
  /** Thresholds, TTL and key-age limits, crown jewels (governance policy). */
  config?: PostureConfig | (() => PostureConfig | Promise<PostureConfig>)
  /** The rule set (default: every built-in rule). */
  rules?: readonly PostureRule[]
}

/**
 * Posture evaluation: each rule's findings go to the finding store as a complete report (so what
 * a rule no longer sees resolves), then identities get their risk score.
 */
export function createPosture({
  store,
  clock = systemClock,
  findings = createFindingStore({ store, clock }),
  config = {},
  rules = builtinRules,
}: PostureDeps): Posture {
  const loadConfig = async () => (typeof config === 'function' ? await config() : config)
  return {
    findings,
    rules() {
      const cfg = typeof config === 'function' ? {} : config
      return rules.map((r) => ({
        id: r.id,
        severity: r.severity,
        title: r.title,
        description: r.description,
        remediation: r.remediation,
        thresholds: Object.fromEntries(
          Object.entries(r.thresholds).map(([k, t]) => [
            k,
            { ...t, value: cfg.thresholds?.[r.id]?.[k] ?? t.default },
          ]),
        ),
      }))
    },
    async run(options = {}) {
      const known = new Set(rules.map((r) => r.id))
      for (const id of options.rules ?? []) {
        if (!known.has(id)) {
          throw new TesseraError(
            'TSR_VALIDATION',
            `unknown rule ${JSON.stringify(id)} (rules: ${[...known].join(', ')})`,
          )
        }
      }
      const selected = options.rules ? rules.filter((r) => options.rules!.includes(r.id)) : rules
      const cfg = await loadConfig()
      const t0 = performance.now()
      const startedAt = clock.now()
      const results: RuleRunResult[] = []
      for (const [i, rule] of selected.entries()) {
        options.onProgress?.({ done: i, total: selected.length, rule: rule.id })
        const r0 = performance.now()
        const ctx = ruleContext(rule, clock.now(), cfg)
        const r = rule.query
          ? await findings.reportQuery(rule.id, rule.severity, rule.query(ctx))
          : await findings.report(
              rule.id,
              rule.evaluate ? await rule.evaluate(store.db, ctx) : [],
              {
                complete: true,
              },
            )
        results.push({
          rule: rule.id,
          severity: rule.severity,
          found: r.opened + r.updated,
          ...r,
          ms: Math.round(performance.now() - r0),
        })
      }
      const riskScores = await computeRiskScores(store, clock.now())
      options.onProgress?.({ done: selected.length, total: selected.length })
      return {
        startedAt: startedAt.toISOString(),
        rules: results,
        riskScores,
        ms: Math.round(performance.now() - t0),
      }
    },
    riskScores: (options) => listRiskScores(store, options),
  }
}
