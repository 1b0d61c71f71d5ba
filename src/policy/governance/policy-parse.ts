import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml'
import { TesseraError } from '../../errors.js'
import { ownershipSteps, type OwnershipStep } from '../../inventory/owners/ownership.js'
import { identityKinds } from '../../store/schema.js'
import type {
  GovernancePolicy,
  NamingRule,
  PolicyProblem,
  RegistrationRule,
} from './policy-types.js'

/** Largest policy file accepted. */
export const maxPolicyBytes = 256 * 1024

const kinds = new Set<string>(identityKinds)
const topKeys = [
  'version',
  'ownership',
  'naming',
  'spiffeIds',
  'maxTtl',
  'maxKeyAge',
  'required',
  'registration',
  'forbiddenGrants',
  'crownJewels',
  'thresholds',
] as const

type Path = Array<string | number>

class Checker {
  readonly problems: PolicyProblem[] = []
  private readonly doc: Document
  private readonly lines: LineCounter
  constructor(doc: Document, lines: LineCounter) {
    this.doc = doc
    this.lines = lines
  }

  /** Position of the value at `path`, or of its key when `key` (an unknown key). */
  private at(path: Path, key = false): { line: number; column: number } {
    let node: unknown = this.doc.contents
    let keyNode: unknown
    for (const step of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === step)
        if (!pair) break
        keyNode = pair.key
        node = pair.value
      } else if (node && typeof node === 'object' && 'items' in node && typeof step === 'number') {
        keyNode = undefined
        node = (node as { items: unknown[] }).items[step]
      } else break
    }
    const target = (key && keyNode ? keyNode : (node ?? keyNode)) as Node | undefined
    const offset = target?.range?.[0] ?? 0
    const pos = this.lines.linePos(offset)
    return { line: pos.line, column: pos.col }
  }

  fail(path: Path, reason: string, key = false): void {
    this.problems.push({ ...this.at(path, key), path: path.join('.') || '(root)', reason })
  }

  object(v: unknown, path: Path): v is Record<string, unknown> {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return true
    this.fail(path, 'must be a mapping')
    return false
  }

  keys(v: Record<string, unknown>, path: Path, allowed: ReadonlySet<string>, what: string): void {
    for (const k of Object.keys(v)) {
      if (!allowed.has(k)) {
        this.fail(
          [...path, k],
          `unknown ${what} "${k}"; expected one of ${[...allowed].join(', ')}`,
          true,
        )
      }
    }
  }

  stringList(v: unknown, path: Path, check?: (s: string, p: Path) => void): string[] | undefined {
    if (!Array.isArray(v)) {
      this.fail(path, 'must be a list of strings')
      return undefined
    }
    const out: string[] = []
    v.forEach((s, i) => {
      if (typeof s !== 'string' || s === '') this.fail([...path, i], 'must be a non-empty string')
      else {
        check?.(s, [...path, i])
        out.push(s)
      }
    })
    return out
  }

  regex(s: string, path: Path): void {
    try {
      new RegExp(s, 'u')
    } catch (err) {
      this.fail(
        path,
        `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`,
      )
    }
  }
}

const durationPattern = /^(\d{1,9})\s*(s|m|h|d)?$/
const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

/** `3600`, `90s`, `15m`, `1h`, `30d` → seconds. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : undefined
  if (typeof v !== 'string') return undefined
  const m = durationPattern.exec(v.trim())
  if (!m) return undefined
  const n = Number(m[1]) * unitSeconds[m[2] ?? 's']!
  return n > 0 ? n : undefined
}

const placeholder = /\{([a-z]+)\}/g
const templateNames = new Set(['team', 'name', 'env', 'ns', 'any'])

function checkTemplate(c: Checker, t: string, path: Path): void {
  for (const m of t.matchAll(placeholder)) {
    if (!templateNames.has(m[1]!)) {
      c.fail(
        path,
        `unknown placeholder {${m[1]}}; expected ${[...templateNames].map((n) => `{${n}}`).join(', ')}`,
      )
    }
  }
  if (/[{}]/.test(t.replace(placeholder, ''))) c.fail(path, 'unbalanced braces in template')
}

/**
 * Parses and validates a policy file. Every problem is reported at once, each with its line,
 * column, path and reason; an invalid file throws TSR_POLICY_INVALID and changes nothing.
 */
export function parsePolicy(text: string, file = 'tessera.policy.yaml'): GovernancePolicy {
  if (Buffer.byteLength(text) > maxPolicyBytes) {
    throw invalid(file, [
      {
        line: 1,
        column: 1,
        path: '(root)',
        reason: `the file is larger than ${maxPolicyBytes} bytes`,
      },
    ])
  }
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })
  if (doc.errors.length > 0) {
    throw invalid(
      file,
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0])
        return {
          line: pos.line,
          column: pos.col,
          path: '(syntax)',
          reason: e.message.split('\n')[0]!,
        }
      }),
    )
  }
  const c = new Checker(doc, lines)
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: 50 })
  } catch (err) {
    // An alias to no anchor, or an alias bomb: the document parses but has no value.
    throw invalid(file, [{ line: 1, column: 1, path: '(syntax)', reason: (err as Error).message }])
  }
  const policy: GovernancePolicy = { version: 1 }
  if (raw === null || raw === undefined) {
    c.fail([], 'the policy is empty; it needs at least "version: 1"')
    throw invalid(file, c.problems)
  }
  if (!c.object(raw, [])) throw invalid(file, c.problems)
  c.keys(raw, [], new Set(topKeys), 'section')
  if (raw.version !== 1) c.fail(['version'], 'version must be 1')

  if (raw.ownership !== undefined && c.object(raw.ownership, ['ownership'])) {
    c.keys(raw.ownership, ['ownership'], new Set(['order']), 'key')
    if (raw.ownership.order !== undefined) {
      const steps = new Set<string>(ownershipSteps)
      const order = c.stringList(raw.ownership.order, ['ownership', 'order'], (s, p) => {
        if (!steps.has(s))
          c.fail(p, `unknown ownership step "${s}"; expected ${ownershipSteps.join(', ')}`)
      })
      if (order && new Set(order).size !== order.length)
        c.fail(['ownership', 'order'], 'a step is listed twice')
      if (order) policy.ownership = { order: order as OwnershipStep[] }
    }
  }

  if (raw.naming !== undefined && c.object(raw.naming, ['naming'])) {
    c.keys(raw.naming, ['naming'], kinds, 'identity kind')
    const naming: Record<string, NamingRule> = {}
    for (const [kind, rule] of Object.entries(raw.naming)) {
      const p = ['naming', kind]
      if (!kinds.has(kind) || !c.object(rule, p)) continue
      c.keys(rule, p, new Set(['pattern', 'template', 'example']), 'key')
      const out: NamingRule = {}
      if (rule.pattern !== undefined) {
        if (typeof rule.pattern !== 'string' || rule.pattern === '')
          c.fail([...p, 'pattern'], 'must be a non-empty string')
        else {
          c.regex(rule.pattern, [...p, 'pattern'])
          out.pattern = rule.pattern
        }
      }
      if (rule.template !== undefined) {
        if (typeof rule.template !== 'string' || rule.template === '')
          c.fail([...p, 'template'], 'must be a non-empty string')
        else {
          checkTemplate(c, rule.template, [...p, 'template'])
          out.template = rule.template
        }
      }
      if (typeof rule.example === 'string') out.example = rule.example
      if (rule.pattern === undefined && rule.template === undefined) {
        c.fail(p, 'give a pattern or a template')
      } else if (rule.pattern !== undefined && rule.template !== undefined) {
        c.fail(p, 'give a pattern or a template, not both')
      }
      naming[kind] = out
    }
    policy.naming = naming
  }

  if (raw.spiffeIds !== undefined && c.object(raw.spiffeIds, ['spiffeIds'])) {
    const out: Record<string, string[]> = {}
    for (const [team, templates] of Object.entries(raw.spiffeIds)) {
      const list = c.stringList(templates, ['spiffeIds', team], (s, p) => {
        if (!s.startsWith('/') && !s.startsWith('spiffe://'))
          c.fail(p, 'a SPIFFE ID template starts with / (a path) or spiffe://')
        checkTemplate(c, s, p)
      })
      if (list) out[team] = list
    }
    policy.spiffeIds = out
  }

  for (const section of ['maxTtl', 'maxKeyAge'] as const) {
    const v = raw[section]
    if (v === undefined || !c.object(v, [section])) continue
    c.keys(v, [section], kinds, 'identity kind')
    const out: Record<string, number> = {}
    for (const [kind, d] of Object.entries(v)) {
      if (!kinds.has(kind)) continue
      const seconds = parseDuration(d)
      if (seconds === undefined) {
        c.fail(
          [section, kind],
          'must be a duration: seconds, or a number with s, m, h or d (e.g. 1h, 90d)',
        )
        continue
      }
      if (section === 'maxKeyAge') {
        if (seconds % 86400 !== 0 && typeof d !== 'number')
          c.fail([section, kind], 'a key age is whole days (e.g. 90d)')
        out[kind] = typeof d === 'number' ? d : seconds / 86400
      } else out[kind] = seconds
    }
    policy[section] = out
  }

  if (raw.required !== undefined && c.object(raw.required, ['required'])) {
    c.keys(raw.required, ['required'], new Set(['owner', 'tags']), 'key')
    const required: NonNullable<GovernancePolicy['required']> = {}
    if (raw.required.owner !== undefined) {
      if (typeof raw.required.owner !== 'boolean')
        c.fail(['required', 'owner'], 'must be true or false')
      else required.owner = raw.required.owner
    }
    const tags = raw.required.tags
    if (tags !== undefined) {
      if (Array.isArray(tags)) {
        const list = c.stringList(tags, ['required', 'tags'])
        if (list) required.tags = { '*': list }
      } else if (c.object(tags, ['required', 'tags'])) {
        c.keys(tags, ['required', 'tags'], new Set([...kinds, '*']), 'identity kind')
        const out: Record<string, string[]> = {}
        for (const [k, list] of Object.entries(tags)) {
          const l = c.stringList(list, ['required', 'tags', k])
          if (l) out[k] = l
        }
        required.tags = out
      }
    }
    policy.required = required
  }

  if (raw.registration !== undefined && c.object(raw.registration, ['registration'])) {
    const reg = raw.registration
    c.keys(reg, ['registration'], new Set(['default', 'rules']), 'key')
    if (reg.default !== undefined && reg.default !== 'allow' && reg.default !== 'deny') {
      c.fail(['registration', 'default'], 'must be allow or deny')
    }
    const rules: RegistrationRule[] = []
    if (!Array.isArray(reg.rules)) c.fail(['registration', 'rules'], 'must be a list of rules')
    else {
      const names = new Set<string>()
      reg.rules.forEach((r, i) => {
        const p = ['registration', 'rules', i]
        if (!c.object(r, p)) return
        c.keys(r, p, new Set(['name', 'spiffeIdPrefixes', 'teams', 'actors', 'pipelines']), 'key')
        if (typeof r.name !== 'string' || !/^[\w.-]{1,100}$/.test(r.name)) {
          c.fail([...p, 'name'], 'a rule needs a name of letters, digits, ".", "_" or "-"')
          return
        }
        if (names.has(r.name)) c.fail([...p, 'name'], `rule name ${r.name} is used twice`)
        names.add(r.name)
        const prefixes = c.stringList(r.spiffeIdPrefixes, [...p, 'spiffeIdPrefixes'], (s, pp) => {
          if (!s.startsWith('spiffe://')) c.fail(pp, 'a SPIFFE ID prefix starts with spiffe://')
        })
        const rule: RegistrationRule = { name: r.name, spiffeIdPrefixes: prefixes ?? [] }
        for (const k of ['teams', 'actors', 'pipelines'] as const) {
          if (r[k] !== undefined) {
            const l = c.stringList(r[k], [...p, k])
            if (l) rule[k] = l
          }
        }
        if (!rule.teams && !rule.actors && !rule.pipelines) {
          c.fail(p, 'a rule names who it allows: teams, actors or pipelines')
        }
        rules.push(rule)
      })
    }
    policy.registration = {
      rules,
      ...(reg.default === 'deny' || reg.default === 'allow' ? { default: reg.default } : {}),
    }
  }

  for (const section of ['forbiddenGrants', 'crownJewels'] as const) {
    if (raw[section] !== undefined) {
      const l = c.stringList(raw[section], [section])
      if (l) policy[section] = l
    }
  }

  if (raw.thresholds !== undefined && c.object(raw.thresholds, ['thresholds'])) {
    const out: Record<string, Record<string, number>> = {}
    for (const [rule, values] of Object.entries(raw.thresholds)) {
      if (!c.object(values, ['thresholds', rule])) continue
      const o: Record<string, number> = {}
      for (const [k, n] of Object.entries(values)) {
        if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
          c.fail(['thresholds', rule, k], 'must be a number ≥ 0')
        else o[k] = n
      }
      out[rule] = o
    }
    policy.thresholds = out
  }

  if (c.problems.length > 0) throw invalid(file, c.problems)
  return policy
}

function invalid(file: string, problems: PolicyProblem[]): TesseraError {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column)
  const first = sorted[0]!
  const more = sorted.length > 1 ? ` (and ${sorted.length - 1} more)` : ''
  return new TesseraError(
    'TSR_POLICY_INVALID',
    `${file}:${first.line}:${first.column}: ${first.path}: ${first.reason}${more}`,
    { details: { errors: sorted.slice(0, 100) } },
  )
}
