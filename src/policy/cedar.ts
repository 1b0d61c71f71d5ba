import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import type { DetailedError } from '@cedar-policy/cedar-wasm/nodejs'

/**
 * The one import of the Cedar engine (its Node entry, which loads the wasm synchronously), and the
 * turning of Cedar's diagnostics into located problems. Everything else in src/policy goes through
 * this file, so the engine's shapes stay in one place.
 */
export { cedar }
export type {
  AuthorizationAnswer,
  EntityJson,
  EntityUidJson,
  SchemaJson,
  CedarValueJson,
} from '@cedar-policy/cedar-wasm/nodejs'

/** The namespace of every Tessera entity type and action. */
export const cedarNamespace = 'Tessera'

/** A Cedar parse or validation problem, located in the policy text it came from. */
export interface PolicyProblem {
  /** The stored policy's name (and statement, for a validation problem). */
  policy?: string
  message: string
  help?: string
  /** 1-based line and column of the first source location Cedar gave, when it gave one. */
  line?: number
  column?: number
  /** The located text (at most 80 characters). */
  snippet?: string
}

/** Line and column (1-based) of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  const end = Math.min(Math.max(offset, 0), text.length)
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: end - lineStart + 1 }
}

/** A problem from Cedar's DetailedError; `text` is what the offsets refer to. */
export function problemOf(
  error: DetailedError,
  text: string | undefined,
  policy?: string,
): PolicyProblem {
  const loc = error.sourceLocations?.[0]
  const problem: PolicyProblem = {
    ...(policy !== undefined ? { policy } : {}),
    message: error.message,
    ...(error.help ? { help: error.help } : {}),
  }
  if (loc && text !== undefined) {
    Object.assign(problem, lineColumn(text, loc.start))
    problem.snippet = text.slice(loc.start, Math.min(loc.end, loc.start + 80))
    if (loc.label) problem.help = problem.help ? `${problem.help}; ${loc.label}` : loc.label
  }
  return problem
}

/** `policy:3:14: message (help)`, for people. */
export function formatProblem(p: PolicyProblem): string {
  const where =
    (p.policy ?? '') + (p.line !== undefined ? `:${p.line}:${p.column}` : '') || 'policy'
  return `${where}: ${p.message}${p.help ? ` (${p.help})` : ''}`
}
