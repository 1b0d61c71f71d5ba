/**
 * Every error Tessera raises on purpose carries a stable code. Callers, tests and API clients branch
 * on `code`, never on the message. `docs/errors.md` documents each code, and a test keeps the two in
 * sync.
 */
export const errorCatalog = {
  TSR_INTERNAL: { status: 500, title: 'internal error' },
  TSR_VALIDATION: { status: 400, title: 'invalid request' },
  TSR_NOT_FOUND: { status: 404, title: 'not found' },
  TSR_METHOD_NOT_ALLOWED: { status: 405, title: 'method not allowed' },
  TSR_CONFLICT: { status: 409, title: 'conflict' },
  TSR_PAYLOAD_TOO_LARGE: { status: 413, title: 'payload too large' },
  TSR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'unsupported media type' },
  TSR_RATE_LIMITED: { status: 429, title: 'too many requests' },
  TSR_AUTH_MISSING: { status: 401, title: 'authentication required' },
  TSR_AUTH_INVALID: { status: 401, title: 'invalid credentials' },
  TSR_AUTH_SCOPE: { status: 403, title: 'insufficient scope' },
  TSR_STORE_UNAVAILABLE: { status: 503, title: 'store unavailable' },
  TSR_STORE_MIGRATION: { status: 500, title: 'store migration failed' },
  TSR_CONFIG: { status: 500, title: 'invalid configuration' },
  TSR_OBSERVATION_INVALID: { status: 422, title: 'invalid observation' },
  TSR_IMPORT_FILE: { status: 400, title: 'import file unreadable' },
  TSR_CLIENT_HTTP: { status: 502, title: 'server request failed' },
  TSR_EXCHANGE_INVALID_TOKEN: { status: 400, title: 'token exchange: invalid token' },
  TSR_EXCHANGE_DENIED: { status: 403, title: 'token exchange: not allowed' },
  TSR_SPIFFE_ID_INVALID: { status: 400, title: 'invalid SPIFFE ID' },
  TSR_BUNDLE_INVALID: { status: 422, title: 'invalid SPIFFE bundle' },
  TSR_X509_SVID_INVALID: { status: 401, title: 'invalid X509-SVID' },
  TSR_JWT_SVID_INVALID: { status: 401, title: 'invalid JWT-SVID' },
  TSR_CA_KEY: { status: 500, title: 'CA key unavailable' },
  TSR_ATTESTATION_FAILED: { status: 401, title: 'node attestation failed' },
  TSR_AGENT_UNAUTHENTICATED: { status: 401, title: 'agent proof missing or invalid' },
  TSR_AGENT_BANNED: { status: 403, title: 'agent banned' },
  TSR_AGENT_NOT_AUTHORIZED: { status: 403, title: 'entry not served by this agent' },
  TSR_CONTROL_UNAVAILABLE: { status: 503, title: 'control plane not available' },
  TSR_AGENT_NATIVE: { status: 500, title: 'peer-credentials addon unavailable' },
  TSR_AGENT_SOCKET: { status: 500, title: 'workload API socket unusable' },
  TSR_AGENT_SIGNING: { status: 503, title: 'SVID signing failed' },
  TSR_DISCOVERY_INPUT: { status: 422, title: 'discovery input unreadable' },
  TSR_DISCOVERY_SOURCE: { status: 502, title: 'discovery source unreachable' },
  TSR_SCANNER_RULES: { status: 400, title: 'invalid scanner rule set' },
  TSR_SCANNER_GIT: { status: 500, title: 'git history unreadable' },
  TSR_OFFBOARDING_STEP: { status: 500, title: 'offboarding step failed' },
  TSR_POLICY_INVALID: { status: 422, title: 'invalid policy' },
  TSR_POLICY_VIOLATION: { status: 403, title: 'governance policy violation' },
  TSR_SECRET_DENIED: { status: 403, title: 'not a consumer of this secret' },
  TSR_ROTATION_FAILED: { status: 502, title: 'secret rotation failed' },
  TSR_ROTATION_LIMIT: { status: 409, title: 'rotation blocked by a key limit' },
  TSR_DYNAMIC_UNAUTHENTICATED: { status: 401, title: 'workload SVID missing or invalid' },
  TSR_DYNAMIC_DENIED: { status: 403, title: 'dynamic credential not allowed' },
  TSR_DYNAMIC_BACKEND: { status: 502, title: 'dynamic credential backend failed' },
  TSR_DYNAMIC_UNAVAILABLE: { status: 503, title: 'dynamic credentials not configured' },
} as const satisfies Record<string, { status: number; title: string }>

export type TesseraErrorCode = keyof typeof errorCatalog

/** Base URI of the RFC 9457 `type` of each error; the fragment is the code. */
export const problemTypeBase = 'https://tessera.dev/problems/'

export class TesseraError extends Error {
  readonly code: TesseraErrorCode
  readonly status: number
  /** Extra machine-readable detail for RFC 9457 extension members (never secrets). */
  readonly details: Record<string, unknown> | undefined

  constructor(
    code: TesseraErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TesseraError'
    this.code = code
    this.status = errorCatalog[code].status
    this.details = options.details
  }
}

export function isTesseraError(err: unknown, code?: TesseraErrorCode): err is TesseraError {
  return err instanceof TesseraError && (code === undefined || err.code === code)
}

export function problemType(code: TesseraErrorCode): string {
  return problemTypeBase + code.toLowerCase().replace(/^tsr_/, '').replaceAll('_', '-')
}
