import {
  instant,
  isObj,
  problemSink,
  recordProblem,
  str,
  type UsageParseResult,
  type UsageRecord,
} from './usage-record.js'

/**
 * The generic JSON Lines form (docs/detection.md): one object per line with `identity`,
 * `resource`, `action`, `at` (ISO 8601), and optionally `count`, `credential` (a credential ref),
 * `sourceAddress` and `node`. For any system whose logs are easier to reshape than to parse here.
 */
export function parseUsageJsonl(text: string): UsageParseResult {
  const result: UsageParseResult = { records: [], problems: [], read: 0, ignored: 0 }
  const problem = problemSink(result)
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line.length === 0 || line.startsWith('#')) continue
    result.read++
    const n = i + 1
    let v: unknown
    try {
      v = JSON.parse(line)
    } catch {
      problem(n, 'not JSON')
      continue
    }
    if (!isObj(v)) {
      problem(n, 'not an object')
      continue
    }
    const record: Partial<UsageRecord> = {
      identity: str(v.identity),
      resource: str(v.resource),
      action: str(v.action),
      at: instant(v.at),
    }
    if (v.count !== undefined) record.count = v.count as number
    const cred = str(v.credential)
    if (cred) record.credential = cred
    const addr = str(v.sourceAddress)
    if (addr) record.sourceAddress = addr
    const node = str(v.node)
    if (node) record.node = node
    const why = recordProblem(record)
    if (why) {
      problem(n, why)
      continue
    }
    result.records.push(record as UsageRecord)
  }
  return result
}
