import type { CredentialType } from '../inventory/observation.js'

export const severities = ['critical', 'high', 'medium', 'low'] as const
export type Severity = (typeof severities)[number]

/** Format checks a rule can ask for beyond its regex (see validators.ts). */
export const validatorNames = [
  'github-crc32',
  'npm-crc32',
  'jwt',
  'base64-key',
  'pem-body',
  'generic-value',
] as const
export type ValidatorName = (typeof validatorNames)[number]

/**
 * One detection rule, as written in a rule-set file (docs/scanner.md has the schema).
 * The secret is the regex's named group `secret`, or the whole match when there is none.
 */
export interface RuleSpec {
  id: string
  title: string
  severity: Severity
  credentialType: CredentialType
  /** Lower-case literals; the rule runs only on files containing one of them. */
  keywords: string[]
  regex: string
  /** Extra regex flags among `i`, `m`, `s` (`g` and `d` are always added). */
  flags?: string
  /** Minimum Shannon entropy of the secret in bits per character. */
  entropy?: number
  /** Minimum length of the secret (default 1). */
  minLength?: number
  validator?: ValidatorName
  /**
   * The match may span lines: the rule runs on up to 16 KiB after each keyword occurrence
   * instead of on the keyword's line.
   */
  multiline?: boolean
  /** Skip the placeholder heuristics (for formats whose values look like words). */
  noPlaceholderCheck?: boolean
  description?: string
}

export interface RuleSetSpec {
  /** Always 1 for this schema. */
  version: 1
  name: string
  description?: string
  rules: RuleSpec[]
}

/**
 * What the engine reports about one secret in one place. It never holds the secret: only a keyed
 * fingerprint and a redacted preview.
 */
export interface Finding {
  rule: string
  title: string
  severity: Severity
  credentialType: CredentialType
  /** Path relative to the scan root, with `/` separators. */
  file: string
  line: number
  column: number
  fingerprint: string
  preview: string
  commit?: string
  author?: string
  email?: string
  date?: string
}

/** Counters of a scan. */
export interface ScanStats {
  files: number
  bytes: number
  skippedBinary: number
  skippedLarge: number
  ignored: number
  commits: number
  suppressed: number
  baselined: number
}

export function emptyStats(): ScanStats {
  return {
    files: 0,
    bytes: 0,
    skippedBinary: 0,
    skippedLarge: 0,
    ignored: 0,
    commits: 0,
    suppressed: 0,
    baselined: 0,
  }
}
