import { parse as parseYaml } from 'yaml'
import { TesseraError } from '../errors.js'
import type { AuthzDecision, AuthzRequest, RequestContext } from './authorizer.js'
import type { PrincipalInput } from './principal.js'

/**
 * `tessera authz test FILE`: a YAML or JSON file of decision cases with the expected answer.
 *
 * ```yaml
 * policies: [draft.cedar]        # optional: evaluate these files instead of the active policies
 * cases:
 *   - name: web reads payments
 *     principal: spiffe://example.org/ns/prod/sa/web
 *     action: db:query
 *     resource: db:payments
 *     context: { intent: nightly report }
 *     at: 2026-11-23T10:04:00Z   # optional instant (local store only)
 *     expect: allow
 *     policies: [payments-read@1#team-read]   # optional: the determining policies, exactly
 * ```
 */
export interface AuthzTestCase {
  name: string
  request: AuthzRequest
  at?: Date
  expect: 'allow' | 'deny'
  policies?: string[]
}

export interface AuthzTestFile {
  /** Cedar files (paths as written, relative to the test file) to evaluate instead of the active set. */
  policyFiles: string[]
  cases: AuthzTestCase[]
}

export interface AuthzTestResult {
  name: string
  expect: 'allow' | 'deny'
  got: 'allow' | 'deny'
  expectedPolicies?: string[]
  determiningPolicies: string[]
  errors: string[]
  reason?: string
  passed: boolean
}

const maxCases = 10_000
const caseKeys = new Set([
  'name',
  'principal',
  'action',
  'resource',
  'context',
  'at',
  'expect',
  'policies',
])

function bad(message: string): TesseraError {
  return new TesseraError('TSR_VALIDATION', message)
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw bad(`${where} is a non-empty string`)
  return v
}

function strings(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s !== '')) {
    throw bad(`${where} is a list of strings`)
  }
  return v as string[]
}

/** Parses a test file (YAML, of which JSON is a subset); every problem names the case. */
export function parseAuthzTestFile(text: string): AuthzTestFile {
  let doc: unknown
  try {
    doc = parseYaml(text, { maxAliasCount: 0 })
  } catch (err) {
    throw bad(`the test file is not YAML or JSON: ${(err as Error).message.split('\n')[0]}`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw bad('the test file is an object with `cases` (and optionally `policies`)')
  }
  const top = doc as Record<string, unknown>
  for (const k of Object.keys(top)) {
    if (k !== 'cases' && k !== 'policies') throw bad(`unknown top-level key ${JSON.stringify(k)}`)
  }
  const policyFiles = top.policies === undefined ? [] : strings(top.policies, 'policies')
  if (!Array.isArray(top.cases) || top.cases.length === 0) {
    throw bad('cases is a non-empty list')
  }
  if (top.cases.length > maxCases) throw bad(`at most ${maxCases} cases`)
  const cases = top.cases.map((raw: unknown, k: number): AuthzTestCase => {
    const where = `cases[${k}]`
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw bad(`${where} is an object`)
    const c = raw as Record<string, unknown>
    for (const key of Object.keys(c)) {
      if (!caseKeys.has(key)) throw bad(`${where}: unknown key ${JSON.stringify(key)}`)
    }
    const name = c.name === undefined ? `case ${k + 1}` : str(c.name, `${where}.name`)
    const expect = c.expect
    if (expect !== 'allow' && expect !== 'deny')
      throw bad(`${where} (${name}): expect is allow or deny`)
    const principal = c.principal
    if (typeof principal !== 'string' && (typeof principal !== 'object' || principal === null)) {
      throw bad(`${where} (${name}): principal is a SPIFFE ID or a principal object`)
    }
    if (
      c.context !== undefined &&
      (typeof c.context !== 'object' || c.context === null || Array.isArray(c.context))
    ) {
      throw bad(`${where} (${name}): context is an object`)
    }
    let at: Date | undefined
    if (c.at !== undefined) {
      const text = c.at instanceof Date ? c.at.toISOString() : str(c.at, `${where}.at`)
      at = new Date(text)
      if (Number.isNaN(at.getTime())) throw bad(`${where} (${name}): at is not an instant`)
    }
    return {
      name,
      request: {
        principal: principal as PrincipalInput,
        action: str(c.action, `${where}.action`),
        resource: str(c.resource, `${where}.resource`),
        ...(c.context !== undefined ? { context: c.context as RequestContext } : {}),
      },
      ...(at ? { at } : {}),
      expect,
      ...(c.policies !== undefined ? { policies: strings(c.policies, `${where}.policies`) } : {}),
    }
  })
  return { policyFiles, cases }
}

/** Compares a decision with its case. */
export function judge(c: AuthzTestCase, d: AuthzDecision): AuthzTestResult {
  const samePolicies =
    c.policies === undefined ||
    (c.policies.length === d.determiningPolicies.length &&
      [...c.policies].sort().join('\n') === [...d.determiningPolicies].sort().join('\n'))
  return {
    name: c.name,
    expect: c.expect,
    got: d.decision,
    ...(c.policies ? { expectedPolicies: c.policies } : {}),
    determiningPolicies: d.determiningPolicies,
    errors: d.errors.map((e) => (e.policy ? `${e.policy}: ${e.message}` : e.message)),
    ...(d.reason ? { reason: d.reason.message } : {}),
    passed: d.decision === c.expect && samePolicies,
  }
}
