import { CommanderError } from 'commander'
import { isTesseraError, type TesseraErrorCode } from '../errors.js'

/**
 * The CLI's exit codes (DESIGN.md "CLI contract"): scripts depend on them.
 * - 0 ok
 * - 1 findings or denied: invalid import lines, a 403 (token lacks the scope), nothing found
 * - 2 usage: unknown command or option, bad option value
 * - 3 runtime: store unavailable, server unreachable or failing, 401 (no or bad credentials), internal
 */
export const exitCodes = { ok: 0, findings: 1, usage: 2, runtime: 3 } as const
export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes]

const byCode: Partial<Record<TesseraErrorCode, ExitCode>> = {
  TSR_VALIDATION: exitCodes.usage,
  TSR_CONFIG: exitCodes.usage,
  TSR_SCANNER_RULES: exitCodes.usage,
  TSR_NOT_FOUND: exitCodes.findings,
  TSR_AUTH_SCOPE: exitCodes.findings,
  TSR_OBSERVATION_INVALID: exitCodes.findings,
  TSR_POLICY_VIOLATION: exitCodes.findings,
  TSR_POLICY_INVALID: exitCodes.usage,
  TSR_SECRET_DENIED: exitCodes.findings,
}

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof CommanderError) {
    // --help, --version and `tessera help` exit 0; help shown because a command is missing is usage.
    const informational =
      err.code === 'commander.helpDisplayed' ||
      err.code === 'commander.version' ||
      (err.code === 'commander.help' && err.exitCode === 0)
    return informational ? exitCodes.ok : exitCodes.usage
  }
  if (isTesseraError(err)) return byCode[err.code] ?? exitCodes.runtime
  return exitCodes.runtime
}

/** The stable code shown with an error: the TesseraError's, TSR_VALIDATION for usage, else TSR_INTERNAL. */
export function errorCodeFor(err: unknown): TesseraErrorCode {
  if (isTesseraError(err)) return err.code
  if (err instanceof CommanderError) return 'TSR_VALIDATION'
  return 'TSR_INTERNAL'
}

export function errorMessageFor(err: unknown): string {
  if (err instanceof CommanderError) return err.message.replace(/^error: /, '')
  if (err instanceof Error) return err.message
  return String(err)
}

/**
 * How an error reaches the operator: `error: <message> (<CODE>)`, or with --json one JSON object
 * `{"error":{"code","message"}}`; the stack only with TESSERA_DEBUG=1.
 */
export function formatError(err: unknown, options: { json: boolean; debug: boolean }): string {
  const code = errorCodeFor(err)
  const message = errorMessageFor(err)
  let out = options.json
    ? JSON.stringify({ error: { code, message } }) + '\n'
    : `error: ${message} (${code})\n`
  if (options.debug && err instanceof Error && err.stack) {
    out += err.stack + '\n'
    if (err.cause instanceof Error && err.cause.stack) out += 'caused by: ' + err.cause.stack + '\n'
  }
  return out
}

export const exitCodesHelp = `Exit codes:
  0  ok
  1  findings or denied (some import lines invalid, nothing found, token lacks the scope)
  2  usage error (unknown command or option, bad option value)
  3  runtime error (store unavailable, server unreachable, authentication failed, internal)`
