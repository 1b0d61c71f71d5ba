import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { TesseraError } from '../errors.js'
import { credentialTypes, type CredentialType } from '../inventory/observation.js'
import { cloudRules } from './rules/cloud.js'
import { genericRules } from './rules/generic.js'
import { keyRules } from './rules/keys.js'
import { saasRules } from './rules/saas.js'
import { vcsRules } from './rules/vcs.js'
import {
  severities,
  validatorNames,
  type RuleSetSpec,
  type RuleSpec,
  type Severity,
  type ValidatorName,
} from './types.js'

/** The built-in rule sets, most specific first: on overlapping matches the earlier rule wins. */
export const builtinRuleSets: readonly RuleSetSpec[] = [
  vcsRules,
  cloudRules,
  saasRules,
  keyRules,
  genericRules,
]

const ruleKeys = new Set([
  'id',
  'title',
  'severity',
  'credentialType',
  'keywords',
  'regex',
  'flags',
  'entropy',
  'minLength',
  'validator',
  'noPlaceholderCheck',
  'multiline',
  'description',
])

function fail(source: string, where: string, message: string): never {
  throw new TesseraError('TSR_SCANNER_RULES', `${source}: ${where}: ${message}`)
}

/**
 * Checks one rule set against the schema of docs/scanner.md and returns it typed. Every problem
 * names the file and the rule; the regex is compiled here so a bad pattern fails at load.
 */
export function validateRuleSet(value: unknown, source: string): RuleSetSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(source, 'top level', 'must be an object with version, name and rules')
  }
  const v = value as Record<string, unknown>
  if (v.version !== 1) fail(source, 'version', 'must be 1')
  if (typeof v.name !== 'string' || v.name.length === 0) {
    fail(source, 'name', 'must be a non-empty string')
  }
  if (!Array.isArray(v.rules) || v.rules.length === 0) {
    fail(source, 'rules', 'must be a non-empty array')
  }
  const rules = v.rules.map((raw: unknown, i: number) => validateRule(raw, `${source}`, i))
  return {
    version: 1,
    name: v.name,
    ...(typeof v.description === 'string' ? { description: v.description } : {}),
    rules,
  }
}

function validateRule(raw: unknown, source: string, i: number): RuleSpec {
  let where = `rules[${i}]`
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail(source, where, 'must be an object')
  }
  const r = raw as Record<string, unknown>
  if (typeof r.id === 'string') where = `rule "${r.id}"`
  for (const key of Object.keys(r)) {
    if (!ruleKeys.has(key)) fail(source, where, `unknown field "${key}"`)
  }
  if (typeof r.id !== 'string' || !/^[a-z0-9][a-z0-9-]{1,63}$/.test(r.id)) {
    fail(source, where, 'id must be 2-64 characters of a-z, 0-9 and -')
  }
  if (typeof r.title !== 'string' || r.title.length === 0) {
    fail(source, where, 'title must be a non-empty string')
  }
  if (!severities.includes(r.severity as Severity)) {
    fail(source, where, `severity must be one of ${severities.join(', ')}`)
  }
  if (!credentialTypes.includes(r.credentialType as CredentialType)) {
    fail(source, where, `credentialType must be one of ${credentialTypes.join(', ')}`)
  }
  if (
    !Array.isArray(r.keywords) ||
    r.keywords.length === 0 ||
    !r.keywords.every((k) => typeof k === 'string' && k.length >= 2 && k === k.toLowerCase())
  ) {
    fail(source, where, 'keywords must be a non-empty array of lower-case strings (2+ characters)')
  }
  if (typeof r.regex !== 'string' || r.regex.length === 0) {
    fail(source, where, 'regex must be a non-empty string')
  }
  if (r.flags !== undefined && (typeof r.flags !== 'string' || !/^[ims]*$/.test(r.flags))) {
    fail(source, where, 'flags may only contain i, m and s')
  }
  try {
    new RegExp(r.regex, `gd${(r.flags as string | undefined) ?? ''}`)
  } catch (err) {
    fail(source, where, `regex does not compile: ${(err as Error).message}`)
  }
  if (
    r.entropy !== undefined &&
    (typeof r.entropy !== 'number' || r.entropy < 0 || r.entropy > 8)
  ) {
    fail(source, where, 'entropy must be a number of bits per character between 0 and 8')
  }
  if (
    r.minLength !== undefined &&
    (typeof r.minLength !== 'number' || !Number.isInteger(r.minLength) || r.minLength < 1)
  ) {
    fail(source, where, 'minLength must be a positive integer')
  }
  if (r.validator !== undefined && !validatorNames.includes(r.validator as ValidatorName)) {
    fail(source, where, `validator must be one of ${validatorNames.join(', ')}`)
  }
  if (r.noPlaceholderCheck !== undefined && typeof r.noPlaceholderCheck !== 'boolean') {
    fail(source, where, 'noPlaceholderCheck must be a boolean')
  }
  if (r.multiline !== undefined && typeof r.multiline !== 'boolean') {
    fail(source, where, 'multiline must be a boolean')
  }
  if (!r.keywords.every((k) => /^[\x20-\x7e]+$/.test(k as string))) {
    fail(source, where, 'keywords must be printable ASCII')
  }
  if (r.description !== undefined && typeof r.description !== 'string') {
    fail(source, where, 'description must be a string')
  }
  return r as unknown as RuleSpec
}

/** Reads a user rule set (YAML or JSON) and validates it. */
export function loadRuleFile(file: string): RuleSetSpec {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new TesseraError(
      'TSR_SCANNER_RULES',
      `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
  let value: unknown
  try {
    value = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new TesseraError(
      'TSR_SCANNER_RULES',
      `${file}: not valid YAML or JSON: ${(err as Error).message}`,
    )
  }
  return validateRuleSet(value, file)
}

/**
 * The rules to run: the built-in sets then the user's, all validated. A user rule with the id of
 * an earlier rule replaces it.
 */
export function resolveRules(extra: readonly RuleSetSpec[] = []): RuleSpec[] {
  const byId = new Map<string, RuleSpec>()
  for (const set of [...builtinRuleSets, ...extra]) {
    const valid = validateRuleSet(set, `rule set "${set.name}"`)
    for (const rule of valid.rules) byId.set(rule.id, rule)
  }
  return [...byId.values()]
}
