import { fingerprintSecret, redactedPreview } from './fingerprint.js'
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

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

export function createDetector(rules: readonly RuleSpec[], key: Uint8Array): Detector {
  const compiled: CompiledRule[] = rules.map((spec, index) => ({
    spec,
    index,
    re: new RegExp(spec.regex, `gd${spec.flags ?? ''}`),
  }))
  const byKeyword = new Map<string, CompiledRule[]>()
  for (const rule of compiled) {
    for (const kw of rule.spec.keywords) {
      const list = byKeyword.get(kw) ?? []
      list.push(rule)
      byKeyword.set(kw, list)
    }
  }
  const keywords = [...byKeyword.keys()].sort((a, b) => b.length - a.length)
  // A match of a keyword also stands for every keyword inside it ("accountkey=" holds
  // "accountkey"): the alternation reports only one keyword per position.
  const expanded = new Map<string, CompiledRule[]>()
  for (const kw of keywords) {
    const rulesFor = new Set<CompiledRule>()
    for (const other of keywords) {
      if (kw.includes(other)) for (const r of byKeyword.get(other)!) rulesFor.add(r)
    }
    expanded.set(kw, [...rulesFor])
  }
  const prefilter = new RegExp(keywords.map(escapeRegex).join('|'), 'gi')

  function candidates(text: string): CompiledRule[] {
    const seen = new Set<string>()
    prefilter.lastIndex = 0
    let m: RegExpExecArray | null
    while ((m = prefilter.exec(text)) !== null) {
      seen.add(m[0].toLowerCase())
      // Resume at the next character, so overlapping keywords ("dd_api" in "dd_api_key") are seen.
      prefilter.lastIndex = m.index + 1
    }
    if (seen.size === 0) return []
    const rulesHit = new Set<CompiledRule>()
    for (const kw of seen) for (const r of expanded.get(kw) ?? []) rulesHit.add(r)
    return [...rulesHit].sort((a, b) => a.index - b.index)
  }

  return {
    ruleCount: compiled.length,
    scan(text, source, counters) {
      const hit = candidates(text)
      if (hit.length === 0) return []
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
        rule.re.lastIndex = 0
        let m: RegExpExecArray | null
        while ((m = rule.re.exec(text)) !== null) {
          if (m[0].length === 0) {
            rule.re.lastIndex++
            continue
          }
          const span = m.indices?.groups?.secret ?? m.indices![0]!
          const raw = m.groups?.secret ?? m[0]
          const secret = spec.validator === 'pem-body' ? normalisePemBody(raw) : raw
          if (secret.length < (spec.minLength ?? 1)) continue
          if (spec.entropy !== undefined && shannonEntropy(secret) < spec.entropy) continue
          if (spec.validator !== undefined && !runValidator(spec.validator, secret)) continue
          // An earlier (more specific) rule already reported this text.
          if (kept.some((k) => k.start < span[1] && span[0] < k.end)) continue
          const li = lineIndexAt(m.index)
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
          kept.push({ rule, start: span[0], end: span[1], matchStart: m.index, secret })
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
