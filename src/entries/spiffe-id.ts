import { TesseraError } from '../errors.js'

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
const segmentPattern = /^[A-Za-z0-9._-]+$/

export function parseSpiffeId(value: unknown, field = 'spiffeId'): ParsedSpiffeId {
  const bad = (why: string) =>
    new TesseraError('TSR_VALIDATION', `${field}: ${why}`, { details: { field } })
  if (typeof value !== 'string') throw bad('must be a string')
  if (Buffer.byteLength(value, 'utf8') > 2048) throw bad('is longer than 2048 bytes')
  if (!value.startsWith('spiffe://'))
    throw bad(`${JSON.stringify(value)} must start with spiffe://`)
  const rest = value.slice('spiffe://'.length)
  const slash = rest.indexOf('/')
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash)
  const path = slash < 0 ? '' : rest.slice(slash)
  if (!trustDomainPattern.test(trustDomain)) {
    throw bad(
      `trust domain ${JSON.stringify(trustDomain)} must be 1-255 characters of lower-case letters, digits, . - _`,
    )
  }
  if (path !== '') {
    const segments = path.slice(1).split('/')
    for (const segment of segments) {
      if (segment === '') throw bad('path has an empty segment or a trailing slash')
      if (segment === '.' || segment === '..') throw bad('path has a . or .. segment')
      if (!segmentPattern.test(segment)) {
        throw bad(`path segment ${JSON.stringify(segment)} may hold only letters, digits, . - _`)
      }
    }
  }
  return { trustDomain, path }
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
