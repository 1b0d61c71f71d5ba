import { TesseraError } from '../errors.js'
import { parseSpiffeId as parseLibrarySpiffeId } from '../spiffe/id.js'

/**
 * A minimal SPIFFE ID check (SPIFFE-ID.md §2): `spiffe://<trust-domain>[/<path>]`, lower-case trust
 * domain of `[a-z0-9.-_]`, path segments of `[a-zA-Z0-9.-_]` with no empty, `.` or `..` segment,
 * no trailing slash, no query, fragment, port, userinfo or percent-encoding, at most 2048 bytes.
 * src/spiffe owns the full parser; this one only guards the control plane's inputs.
 */
export interface ParsedSpiffeId {
  trustDomain: string
  /** `''` for the trust domain's own ID, else starts with `/`. */
  path: string
}

const trustDomainPattern = /^[a-z0-9._-]{1,255}$/

export function parseSpiffeId(value: unknown, field = 'spiffeId'): ParsedSpiffeId {
  if (typeof value !== 'string') {
    throw new TesseraError('TSR_VALIDATION', `${field}: must be a string`, { details: { field } })
  }
  try {
    const { trustDomain, path } = parseLibrarySpiffeId(value)
    return { trustDomain, path }
  } catch (err) {
    // The SPIFFE library's reason, as this API's validation error naming the field.
    throw new TesseraError('TSR_VALIDATION', `${field}: ${(err as Error).message}`, {
      details: { field },
      cause: err,
    })
  }
}

/** A SPIFFE ID that names a workload or agent: it has a path. */
export function parseWorkloadSpiffeId(value: unknown, field = 'spiffeId'): ParsedSpiffeId {
  const parsed = parseSpiffeId(value, field)
  if (parsed.path === '') {
    throw new TesseraError(
      'TSR_VALIDATION',
      `${field}: must have a path (not the trust domain ID)`,
      {
        details: { field },
      },
    )
  }
  return parsed
}

export function isTrustDomainName(value: string): boolean {
  return trustDomainPattern.test(value)
}

/** `spiffe://<td>/spire/server`: the parent of node alias entries (SPIRE's convention). */
export function serverSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/spire/server`
}

/** `spiffe://<td>/spire/agent/<type>/<id…>`. `id` is already made of valid segments. */
export function agentSpiffeId(trustDomain: string, attestationType: string, id: string): string {
  return `spiffe://${trustDomain}/spire/agent/${attestationType}/${id}`
}
