import { X509Certificate, createPublicKey, type JsonWebKey } from 'node:crypto'
import { TesseraError } from '../errors.js'
import { parseTrustDomain } from './id.js'
import { parseStrictJson } from './strict-json.js'
import type { JwtAuthority, TrustBundle } from './types.js'

/**
 * SPIFFE trust bundles as JWK Sets (spiffe/spiffe standards/SPIFFE_Trust_Domain_and_Bundle.md §4):
 * one `x509-svid` JWK per CA certificate (with `x5c`, never a `kid`) and one `jwt-svid` JWK per JWT
 * signing key (with a `kid`), plus `spiffe_sequence` and `spiffe_refresh_hint`. Pure.
 */

/** Largest bundle document accepted (bytes of text). */
export const maxBundleChars = 4 * 1024 * 1024

/** The public members of a JWK kept in a bundle (never `d` or other private parameters). */
const publicMembers = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const

function publicJwk(jwk: JsonWebKey): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of publicMembers) {
    const v = jwk[m]
    if (typeof v === 'string') out[m] = v
  }
  return out
}

/** The JWK Set document of a bundle, as an object (serialise with `JSON.stringify`). */
export function bundleToJwks(bundle: TrustBundle): {
  keys: Record<string, unknown>[]
  spiffe_sequence: number
  spiffe_refresh_hint: number
} {
  const keys: Record<string, unknown>[] = []
  for (const der of bundle.x509Authorities) {
    const cert = new X509Certificate(der)
    keys.push({
      ...publicJwk(cert.publicKey.export({ format: 'jwk' })),
      use: 'x509-svid',
      x5c: [der.toString('base64')],
    })
  }
  for (const a of bundle.jwtAuthorities) {
    keys.push({ ...publicJwk(a.publicKey), kid: a.kid, use: 'jwt-svid' })
  }
  return {
    keys,
    spiffe_sequence: bundle.sequence,
    spiffe_refresh_hint: bundle.refreshHintSeconds,
  }
}

export function serializeBundle(bundle: TrustBundle): string {
  return JSON.stringify(bundleToJwks(bundle))
}

/** Only the `jwt-svid` keys, as a plain JWKS (for jose's `createLocalJWKSet`/`createRemoteJWKSet`). */
export function jwtJwks(bundle: TrustBundle): { keys: Record<string, unknown>[] } {
  return {
    keys: bundle.jwtAuthorities.map((a) => ({
      ...publicJwk(a.publicKey),
      kid: a.kid,
      use: 'sig',
      alg: algForJwk(a.publicKey),
    })),
  }
}

function algForJwk(jwk: JsonWebKey): string {
  if (jwk.kty === 'EC')
    return jwk.crv === 'P-384' ? 'ES384' : jwk.crv === 'P-521' ? 'ES512' : 'ES256'
  return 'RS256'
}

function bad(message: string, details?: Record<string, unknown>): TesseraError {
  return new TesseraError('TSR_BUNDLE_INVALID', message, details ? { details } : {})
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Parses a SPIFFE bundle for `trustDomain`. Duplicate keys anywhere are rejected. JWKs with an
 * unknown or missing `kty` or `use` are ignored, as are `x509-svid` JWKs without `x5c` (the standard
 * says so); a JWK that claims a known use but breaks its rules rejects the whole bundle.
 */
export function parseBundle(text: string, trustDomain: string): TrustBundle {
  const td = parseTrustDomain(trustDomain)
  if (typeof text !== 'string' || text.length > maxBundleChars) {
    throw bad(`a bundle is a JSON text of at most ${maxBundleChars} characters`)
  }
  return bundleFromJson(
    parseStrictJson(text, { code: 'TSR_BUNDLE_INVALID', what: 'the bundle' }),
    td,
  )
}

function bundleFromJson(doc: unknown, td: string, ignoreRefreshHint = false): TrustBundle {
  if (!isObject(doc)) throw bad('a bundle is a JSON object')
  const keys = doc.keys
  if (!Array.isArray(keys)) throw bad('a bundle has a "keys" array')
  const sequence = optionalCount(doc.spiffe_sequence, 'spiffe_sequence')
  const refresh = optionalCount(doc.spiffe_refresh_hint, 'spiffe_refresh_hint')
  const x509Authorities: Buffer[] = []
  const jwtAuthorities: JwtAuthority[] = []
  const kids = new Set<string>()
  keys.forEach((key, index) => {
    if (!isObject(key)) throw bad(`keys[${index}] is not an object`, { index })
    if (typeof key.kty !== 'string' || !['EC', 'RSA', 'OKP'].includes(key.kty)) return
    if (key.use === 'x509-svid') {
      if (key.x5c === undefined) return
      if (key.kid !== undefined) throw bad(`keys[${index}]: an x509-svid key has no kid`, { index })
      if (!Array.isArray(key.x5c) || key.x5c.length !== 1 || typeof key.x5c[0] !== 'string') {
        throw bad(`keys[${index}]: x5c holds exactly one base64 certificate`, { index })
      }
      const der = strictBase64(key.x5c[0], index)
      try {
        new X509Certificate(der)
      } catch {
        throw bad(`keys[${index}]: x5c[0] is not a DER certificate`, { index })
      }
      x509Authorities.push(der)
    } else if (key.use === 'jwt-svid') {
      if (typeof key.kid !== 'string' || key.kid === '') {
        throw bad(`keys[${index}]: a jwt-svid key has a kid`, { index })
      }
      if (kids.has(key.kid))
        throw bad(`keys[${index}]: the kid ${key.kid} appears twice`, { index })
      if ('d' in key || 'p' in key || 'k' in key) {
        throw bad(`keys[${index}]: a bundle holds public keys only`, { index })
      }
      const jwk = publicJwk(key as JsonWebKey)
      try {
        createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
      } catch {
        throw bad(`keys[${index}]: not a usable public key`, { index })
      }
      kids.add(key.kid)
      jwtAuthorities.push({ kid: key.kid, publicKey: jwk as JsonWebKey })
    }
  })
  return {
    trustDomain: td,
    x509Authorities,
    jwtAuthorities,
    sequence: sequence ?? 0,
    refreshHintSeconds: ignoreRefreshHint ? 0 : (refresh ?? 0),
  }
}

function optionalCount(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw bad(`${name} is a non-negative integer (up to 2^53 - 1)`)
  }
  return v
}

function strictBase64(s: string, index: number): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0 || s.length === 0) {
    throw bad(`keys[${index}]: x5c[0] is not standard base64`, { index })
  }
  return Buffer.from(s, 'base64')
}

/**
 * Parses a SPIFFE bundle map (`{"trust_domains": {"<td>": <bundle>}}`, §5). A duplicate key, at any
 * level, rejects the map; the refresh hints inside it are ignored (set to 0).
 */
export function parseBundleMap(text: string): Map<string, TrustBundle> {
  if (typeof text !== 'string' || text.length > maxBundleChars) {
    throw bad(`a bundle map is a JSON text of at most ${maxBundleChars} characters`)
  }
  const doc = parseStrictJson(text, { code: 'TSR_BUNDLE_INVALID', what: 'the bundle map' })
  if (!isObject(doc) || !isObject(doc.trust_domains)) {
    throw bad('a bundle map is an object with a "trust_domains" object')
  }
  const out = new Map<string, TrustBundle>()
  for (const [key, value] of Object.entries(doc.trust_domains)) {
    const td = parseTrustDomain(key)
    if (out.has(td)) throw bad(`the trust domain ${td} appears twice`)
    out.set(td, bundleFromJson(value, td, true))
  }
  return out
}

export function serializeBundleMap(bundles: readonly TrustBundle[]): string {
  const trustDomains: Record<string, unknown> = {}
  for (const b of bundles) {
    const { keys, spiffe_sequence } = bundleToJwks(b)
    trustDomains[b.trustDomain] = { keys, spiffe_sequence }
  }
  return JSON.stringify({ trust_domains: trustDomains })
}
