import { fingerprintSecret, redactedPreview } from './fingerprint.js'
import { createKeywordMatcher } from './keywords.js'
import { allowMarker, isHashLine, isPlaceholder } from './suppress.js'
import type { Finding, RuleSpec } from './types.js'
import { normalisePemBody, runValidator, shannonEntropy } from './validators.js'

interface CompiledRule {
  spec: RuleSpec
  index: number
  re: RegExp
}

/** Where a block of text comes from. `lines[i]` is the real line number of line `i` (history). */
export interface TextSource {
  file: string
  lines?: readonly number[]
  commit?: string
  author?: string
  email?: string
  date?: string
}

export interface DetectorCounters {
  suppressed: number
}

/**
 * The detection engine over text. The raw secret exists only inside `scan`: what comes out is a
 * finding with a keyed fingerprint and a redacted preview.
 */
export interface Detector {
  scan(text: string, source: TextSource, counters?: DetectorCounters): Finding[]
  readonly ruleCount: number
}

/** How far a multi-line rule may reach past its keyword (a 16384-bit RSA key is ~12 KB). */
const multilineWindow = 16 * 1024

export function createDetector(rules: readonly RuleSpec[], key: Uint8Array): Detector {
  const compiled: CompiledRule[] = rules.map((spec, index) => ({
    spec,
    index,
    re: new RegExp(spec.regex, `gd${spec.flags ?? ''}`),
  }))
  const keywords = [...new Set(compiled.flatMap((r) => r.spec.keywords))]
  const rulesOf = keywords.map((kw) => compiled.filter((r) => r.spec.keywords.includes(kw)))
  const matcher = createKeywordMatcher(keywords)

  /**
   * The prefilter: one pass of the keyword automaton. A rule runs only on windows around its
   * keywords' occurrences: the line of the occurrence, or up to `multilineWindow` characters
   * after it for multi-line rules. Returns, per rule, its windows in text order, merged.
   */
  function windows(text: string): Map<CompiledRule, [number, number][]> {
    const byRule = new Map<CompiledRule, [number, number][]>()
    // Bounds of the line of the latest occurrence: occurrences come in text order, so each line
    // is measured once and the whole pass stays linear.
    let lineStart = 0
    let lineEnd = -1
    matcher.scan(text, (k, start) => {
      if (start > lineEnd) {
        lineStart = text.lastIndexOf('\n', start) + 1
        lineEnd = text.indexOf('\n', start)
        if (lineEnd < 0) lineEnd = text.length
      }
      for (const rule of rulesOf[k]!) {
        let list = byRule.get(rule)
        if (list === undefined) byRule.set(rule, (list = []))
        const last = list[list.length - 1]
        if (last !== undefined && start < last[1]) continue
        const end =
          rule.spec.multiline === true ? Math.min(text.length, start + multilineWindow) : lineEnd
        if (last !== undefined && lineStart <= last[1]) last[1] = Math.max(last[1], end)
        else list.push([lineStart, end])
      }
    })
    return byRule
  }

  return {
    ruleCount: compiled.length,
    scan(text, source, counters) {
      const byRule = windows(text)
      if (byRule.size === 0) return []
      const hit = [...byRule.keys()].sort((a, b) => a.index - b.index)
      let lineStarts: number[] | undefined
      const lineIndexAt = (offset: number): number => {
        if (lineStarts === undefined) {
          lineStarts = [0]
          for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
            lineStarts.push(i + 1)
          }
        }
        let lo = 0
        let hi = lineStarts.length - 1
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1
          if (lineStarts[mid]! <= offset) lo = mid
          else hi = mid - 1
        }
        return lo
      }
      const lineText = (index: number): string => {
        const start = lineStarts![index]!
        const next = lineStarts![index + 1]
        return text.slice(start, next === undefined ? undefined : next - 1)
      }
      const kept: {
        rule: CompiledRule
        start: number
        end: number
        matchStart: number
        secret: string
      }[] = []
      for (const rule of hit) {
        const spec = rule.spec
        // Spans kept by earlier rules never overlap each other: sorted by start they are sorted
        // by end too, and this rule's matches come in text order, so one pointer walks them.
        const prior = kept.map((k) => [k.start, k.end] as const).sort((a, b) => a[0] - b[0])
        let p = 0
        for (const [from, to] of byRule.get(rule)!) {
          const part = text.slice(from, to)
          rule.re.lastIndex = 0
          let m: RegExpExecArray | null
          while ((m = rule.re.exec(part)) !== null) {
            if (m[0].length === 0) {
              rule.re.lastIndex++
              continue
            }
            const rel = m.indices?.groups?.secret ?? m.indices![0]!
            const span: [number, number] = [rel[0] + from, rel[1] + from]
            const matchIndex = m.index + from
            const raw = m.groups?.secret ?? m[0]
            const secret = spec.validator === 'pem-body' ? normalisePemBody(raw) : raw
            if (secret.length < (spec.minLength ?? 1)) continue
            if (spec.entropy !== undefined && shannonEntropy(secret) < spec.entropy) continue
            if (spec.validator !== undefined && !runValidator(spec.validator, secret)) continue
            // An earlier (more specific) rule already reported this text.
            while (p < prior.length && prior[p]![1] <= span[0]) p++
            if (p < prior.length && prior[p]![0] < span[1]) continue
            const li = lineIndexAt(matchIndex)
            const line = lineText(li)
            const suppressed =
              (spec.noPlaceholderCheck !== true && isPlaceholder(secret)) ||
              line.includes(allowMarker) ||
              (li > 0 && lineText(li - 1).includes(`${allowMarker}-next-line`)) ||
              (spec.validator === 'generic-value' && isHashLine(line))
            if (suppressed) {
              if (counters) counters.suppressed++
              continue
            }
            kept.push({ rule, start: span[0], end: span[1], matchStart: matchIndex, secret })
          }
        }
      }
      kept.sort((a, b) => a.matchStart - b.matchStart)
      return kept.map((k) => {
        const li = lineIndexAt(k.matchStart)
        const spec = k.rule.spec
        const finding: Finding = {
          rule: spec.id,
          title: spec.title,
          severity: spec.severity,
          credentialType: spec.credentialType,
          file: source.file,
          line: source.lines ? (source.lines[li] ?? li + 1) : li + 1,
          column: k.matchStart - lineStarts![li]! + 1,
          fingerprint: fingerprintSecret(key, k.secret),
          preview: redactedPreview(k.secret),
        }
        if (source.commit !== undefined) finding.commit = source.commit
        if (source.author !== undefined) finding.author = source.author
        if (source.email !== undefined) finding.email = source.email
        if (source.date !== undefined) finding.date = source.date
        return finding
      })
    },
  }
}
