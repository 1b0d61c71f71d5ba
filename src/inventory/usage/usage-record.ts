/**
 * One observed access, as every usage parser produces it: who (an identity ref as the inventory
 * names it), on what, doing what, when, and from where. Records are aggregated per hour before they
 * reach the store (`aggregateUsage`).
 */
export interface UsageRecord {
  identity: string
  resource: string
  action: string
  at: Date
  /** How many accesses this record stands for (default 1). */
  count?: number
  /** A credential ref the access was made with, when the log names it (raises its last_used_at). */
  credential?: string
  /** An access key id (AWS), matched against credentials' `attributes.accessKeyId`. */
  accessKeyId?: string
  sourceAddress?: string
  node?: string
}

export interface UsageProblem {
  /** 1-based line (JSON Lines) or record index (CloudTrail). */
  line: number
  message: string
}

export interface UsageParseResult {
  records: UsageRecord[]
  /** Entries that were skipped, with why (at most `maxProblems`). */
  problems: UsageProblem[]
  /** Entries read, including skipped ones. */
  read: number
  /** Entries skipped on purpose (failed calls, non-final stages), not problems. */
  ignored: number
}

export const usageFormats = ['cloudtrail', 'k8s-audit', 'jsonl'] as const
export type UsageFormat = (typeof usageFormats)[number]

export const maxProblems = 100
/** Longest accepted field (refs, actions); longer values make the entry a problem. */
export const maxField = 2048

export function problemSink(result: UsageParseResult) {
  return (line: number, message: string) => {
    if (result.problems.length < maxProblems) result.problems.push({ line, message })
  }
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined
}

export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function instant(v: unknown): Date | undefined {
  if (typeof v !== 'string' || v.length > 64) return undefined
  const d = new Date(v)
  return Number.isNaN(d.getTime()) ? undefined : d
}

/** Checks the fields every record needs; returns the problem, or undefined when fine. */
export function recordProblem(r: Partial<UsageRecord>): string | undefined {
  for (const field of ['identity', 'resource', 'action'] as const) {
    const v = r[field]
    if (typeof v !== 'string' || v.length === 0) return `${field} is missing`
    if (v.length > maxField) return `${field} is longer than ${maxField} characters`
  }
  if (!(r.at instanceof Date) || Number.isNaN(r.at.getTime())) return 'time is missing or invalid'
  if (r.count !== undefined && (!Number.isSafeInteger(r.count) || r.count < 1 || r.count > 1e9)) {
    return 'count must be an integer from 1 to 1e9'
  }
  return undefined
}
