import { TesseraError } from '../errors.js'

/**
 * SPIFFE IDs (spiffe/spiffe standards/SPIFFE-ID.md). Pure: no I/O. Every rule of the standard is a
 * check here, and a broken rule is a `TSR_SPIFFE_ID_INVALID` whose `details.reason` names it.
 */

/** A parsed SPIFFE ID: the trust domain (lower case, no scheme) and the path (`''` or `/a/b`). */
export interface SpiffeId {
  trustDomain: string
  path: string
}

/** Implementations must accept IDs up to 2048 bytes and should not make longer ones. */
export const maxSpiffeIdBytes = 2048
/** A trust domain is a DNS-style host name: at most 255 bytes. */
export const maxTrustDomainBytes = 255

const scheme = 'spiffe://'
const tdChar = /^[a-z0-9._-]+$/
const segmentChar = /^[a-zA-Z0-9._-]+$/

export type SpiffeIdRule =
  | 'empty'
  | 'too-long'
  | 'scheme'
  | 'trust-domain-empty'
  | 'trust-domain-too-long'
  | 'trust-domain-chars'
  | 'userinfo'
  | 'port'
  | 'query'
  | 'fragment'
  | 'percent-encoding'
  | 'empty-segment'
  | 'dot-segment'
  | 'trailing-slash'
  | 'path-chars'
  | 'root-path'
  | 'not-a-string'

function invalid(input: string, reason: SpiffeIdRule, message: string): TesseraError {
  // The input is echoed shortened: it may be attacker-supplied.
  const shown = input.length > 100 ? input.slice(0, 100) + '…' : input
  return new TesseraError('TSR_SPIFFE_ID_INVALID', `${message}: ${JSON.stringify(shown)}`, {
    details: { reason },
  })
}

/** Checks a bare trust domain name (`example.org`, no scheme). Returns it unchanged. */
export function parseTrustDomain(input: string): string {
  if (typeof input !== 'string') throw invalid(String(input), 'not-a-string', 'not a string')
  if (input.startsWith(scheme)) {
    // `spiffe://example.org` names a trust domain too, as long as it has no path.
    const id = parseSpiffeId(input)
    if (id.path !== '') throw invalid(input, 'path-chars', 'a trust domain has no path')
    return id.trustDomain
  }
  checkTrustDomain(input, input)
  return input
}

function checkTrustDomain(td: string, input: string): void {
  if (td === '') throw invalid(input, 'trust-domain-empty', 'the trust domain is empty')
  if (td.includes('@')) throw invalid(input, 'userinfo', 'the trust domain has userinfo')
  if (td.includes(':')) throw invalid(input, 'port', 'the trust domain has a port (or is IPv6)')
  if (td.includes('%')) throw invalid(input, 'percent-encoding', 'percent-encoding is not allowed')
  if (!tdChar.test(td)) {
    throw invalid(
      input,
      'trust-domain-chars',
      'a trust domain has only lower-case letters, digits, ".", "-" and "_"',
    )
  }
  if (td.length > maxTrustDomainBytes) {
    throw invalid(input, 'trust-domain-too-long', 'the trust domain is longer than 255 bytes')
  }
}

/**
 * Parses `spiffe://trust-domain/path`. The scheme and the trust domain must be lower case (as
 * go-spiffe requires): the standard forbids emitting anything else, and an ID compared as a string
 * must have one spelling.
 */
export function parseSpiffeId(input: string): SpiffeId {
  if (typeof input !== 'string') throw invalid(String(input), 'not-a-string', 'not a string')
  if (input === '') throw invalid(input, 'empty', 'the SPIFFE ID is empty')
  if (Buffer.byteLength(input, 'utf8') > maxSpiffeIdBytes) {
    throw invalid(input, 'too-long', `a SPIFFE ID is at most ${maxSpiffeIdBytes} bytes`)
  }
  if (!input.startsWith(scheme)) {
    throw invalid(input, 'scheme', 'a SPIFFE ID starts with spiffe://')
  }
  const rest = input.slice(scheme.length)
  if (rest.includes('?')) throw invalid(input, 'query', 'a SPIFFE ID has no query')
  if (rest.includes('#')) throw invalid(input, 'fragment', 'a SPIFFE ID has no fragment')
  const slash = rest.indexOf('/')
  const td = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? '' : rest.slice(slash)
  checkTrustDomain(td, input)
  if (path !== '') checkPath(path, input)
  return { trustDomain: td, path }
}

function checkPath(path: string, input: string): void {
  if (path.includes('%'))
    throw invalid(input, 'percent-encoding', 'percent-encoding is not allowed')
  if (path.endsWith('/')) {
    throw invalid(input, path === '/' ? 'empty-segment' : 'trailing-slash', 'no trailing "/"')
  }
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') throw invalid(input, 'empty-segment', 'the path has an empty segment')
    if (segment === '.' || segment === '..') {
      throw invalid(input, 'dot-segment', 'the path has a "." or ".." segment')
    }
    if (!segmentChar.test(segment)) {
      throw invalid(
        input,
        'path-chars',
        'a path segment has only letters, digits, ".", "-" and "_"',
      )
    }
  }
}

/** Formats (and re-checks) an ID from its parts; `path` is `''` or starts with `/`. */
export function formatSpiffeId(id: SpiffeId): string {
  const text = scheme + id.trustDomain + id.path
  const parsed = parseSpiffeId(text)
  if (parsed.trustDomain !== id.trustDomain || parsed.path !== id.path) {
    throw invalid(text, 'path-chars', 'the parts do not make one SPIFFE ID')
  }
  return text
}

/** The ID of a trust domain itself (`spiffe://example.org`), as a CA certificate's URI SAN. */
export function trustDomainId(trustDomain: string): string {
  return scheme + parseTrustDomain(trustDomain)
}

/** Parses an ID that names a workload: it must have a path (not the trust domain's own ID). */
export function parseWorkloadSpiffeId(input: string): SpiffeId {
  const id = parseSpiffeId(input)
  if (id.path === '') {
    throw invalid(input, 'root-path', 'a workload SPIFFE ID needs a path')
  }
  return id
}

/** True when `input` is a valid SPIFFE ID (any path). */
export function isSpiffeId(input: string): boolean {
  try {
    parseSpiffeId(input)
    return true
  } catch {
    return false
  }
}
