import type { GovernancePolicy } from './policy-types.js'

/** One difference between two policy versions, by dotted path (`maxTtl.workload`). */
export interface PolicyChange {
  path: string
  change: 'added' | 'removed' | 'changed'
  before?: unknown
  after?: unknown
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A structural diff: maps compared key by key, lists and scalars as values. */
export function diffPolicies(a: GovernancePolicy, b: GovernancePolicy): PolicyChange[] {
  const out: PolicyChange[] = []
  const walk = (x: unknown, y: unknown, path: string) => {
    if (isObject(x) && isObject(y)) {
      for (const k of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
        walk(x[k], y[k], path ? `${path}.${k}` : k)
      }
      return
    }
    if (x === undefined && y !== undefined) out.push({ path, change: 'added', after: y })
    else if (x !== undefined && y === undefined) out.push({ path, change: 'removed', before: x })
    else if (JSON.stringify(x) !== JSON.stringify(y))
      out.push({ path, change: 'changed', before: x, after: y })
  }
  walk(a, b, '')
  return out
}
