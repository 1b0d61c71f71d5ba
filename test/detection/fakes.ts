import type {
  FindingInput,
  FindingReporter,
  FindingReportResult,
} from '../../src/posture/finding-types.js'

/** An in-memory finding store: keeps findings by dedup key, as the real store deduplicates. */
export function createMemoryFindings(): FindingReporter & {
  readonly byKey: Map<string, FindingInput & { seen: number }>
} {
  const byKey = new Map<string, FindingInput & { seen: number }>()
  return {
    byKey,
    async report(rule, findings): Promise<FindingReportResult> {
      let opened = 0
      let updated = 0
      for (const f of findings) {
        const key = f.dedupKey ?? `${rule}:${f.subjectRef}`
        const prev = byKey.get(key)
        if (prev) {
          prev.seen++
          updated++
        } else {
          byKey.set(key, { ...f, seen: 1 })
          opened++
        }
      }
      return { opened, updated, resolved: 0 }
    },
  }
}
