import { constants, createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto'
import { TesseraError } from '../errors.js'
import { p1363ToDer } from './ecdsa-signature.js'
import { parseSpiffeId } from './id.js'
import { parseStrictJson } from './strict-json.js'
import type { JwtAuthority, TrustBundle } from './types.js'

/**
 * JWT-SVID validation for relying parties (spiffe/spiffe standards/JWT-SVID.md). Pure (the time is
 * passed in). JWS compact form only; `alg` from the allow-list (never `none` or HS*); only the
 * `alg`, `kid` and `typ` headers; `typ`, when set, `JWT` or `JOSE`; `sub` a SPIFFE ID whose trust
 * domain's bundle holds the key; `aud` holds the expected audience; `exp` present and not past.
 */

export const allowedJwtAlgs = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
] as const
export type JwtSvidAlg = (typeof allowedJwtAlgs)[number]

export interface JwtSvidValidation {
  spiffeId: string
  claims: Record<string, unknown>
  header: { alg: JwtSvidAlg; kid?: string; typ?: string }
}

export interface JwtValidateOptions {
  /** Clock skew allowed on `exp` and `nbf`, seconds (default 0). */
  leewaySeconds?: number
  /** Restrict the algorithms further (e.g. `['ES256']`). */
  algorithms?: readonly JwtSvidAlg[]
}

/** Longest token accepted, characters. */
export const maxJwtChars = 16 * 1024

const b64url = /^[A-Za-z0-9_-]+$/

function bad(message: string, reason: string): TesseraError {
  return new TesseraError('TSR_JWT_SVID_INVALID', message, { details: { reason } })
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  let text: string
  try {
    text = utf8.decode(Buffer.from(segment, 'base64url'))
  } catch {
    throw bad(`the JWT ${what} is not UTF-8`, 'malformed')
  }
  const doc = parseStrictJson(text, { code: 'TSR_JWT_SVID_INVALID', what: `the JWT ${what}` })
  if (!isObject(doc)) throw bad(`the JWT ${what} is not a JSON object`, 'malformed')
  return doc
}

/**
 * Decoded headers by their base64url text: the tokens of one signing key share one header, so the
 * strict parse runs once per distinct header (a bounded cache; parsing is a pure function of the
 * text). Callers get a copy, never the cached object.
 */
const headerCache = new Map<string, Record<string, unknown>>()
const headerCacheMax = 256

function decodedHeader(segment: string): Record<string, unknown> {
  let header = headerCache.get(segment)
  if (header === undefined) {
    header = decodeSegment(segment, 'header')
    if (segment.length <= 512) {
      if (headerCache.size >= headerCacheMax) headerCache.clear()
      headerCache.set(segment, header)
    }
  }
  return Object.assign(Object.create(null) as Record<string, unknown>, header)
}

/** Splits and decodes a compact JWS without verifying it (verification follows in the caller). */
export function decodeJwt(token: string): {
  header: Record<string, unknown>
  payload: Record<string, unknown>
  signingInput: string
  signature: Buffer
} {
  if (typeof token !== 'string' || token.length > maxJwtChars) {
    throw bad(`a JWT-SVID is a string of at most ${maxJwtChars} characters`, 'malformed')
  }
  const parts = token.split('.')
  if (parts.length !== 3)
    throw bad('a JWT-SVID is a JWS in compact form (three parts)', 'malformed')
  const [h, p, s] = parts as [string, string, string]
  if (!b64url.test(h) || !b64url.test(p) || !b64url.test(s)) {
    throw bad('a JWT part is not base64url', 'malformed')
  }
  return {
    header: decodedHeader(h),
    payload: decodeSegment(p, 'payload'),
    signingInput: `${h}.${p}`,
    signature: Buffer.from(s, 'base64url'),
  }
}

const keyCache = new WeakMap<object, KeyObject>()

function keyOf(authority: JwtAuthority): KeyObject {
  let key = keyCache.get(authority.publicKey)
  if (key === undefined) {
    key = createPublicKey({ key: authority.publicKey, format: 'jwk' })
    keyCache.set(authority.publicKey, key)
  }
  return key
}

const ecCurve: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }
const ecSize: Record<string, number> = { ES256: 32, ES384: 48, ES512: 66 }

function verifySignature(
  alg: JwtSvidAlg,
  key: KeyObject,
  jwk: JsonWebKey,
  input: string,
  sig: Buffer,
): boolean {
  const hash = `sha${alg.slice(2)}`
  const family = alg.slice(0, 2)
  if (family === 'ES') {
    if (jwk.kty !== 'EC' || jwk.crv !== ecCurve[alg]) return false
    // The bare KeyObject and a DER signature: see ecdsa-signature.ts for why.
    const der = p1363ToDer(sig, ecSize[alg]!)
    return der !== undefined && verify(hash, Buffer.from(input), key, der)
  }
  if (jwk.kty !== 'RSA') return false
  if (family === 'RS') {
    return verify(hash, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PADDING }, sig)
  }
  return verify(
    hash,
    Buffer.from(input),
    { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 },
    sig,
  )
}

/**
 * Validates `token` for `audience` with the bundle of its subject's trust domain. `bundles` is one
 * bundle or a map by trust domain.
 */
export function validateJwtSvid(
  token: string,
  bundles: TrustBundle | ReadonlyMap<string, TrustBundle>,
  audience: string,
  now: Date,
  options: JwtValidateOptions = {},
): JwtSvidValidation {
  const { header, payload, signingInput, signature } = decodeJwt(token)
  for (const name of Object.keys(header)) {
    if (name !== 'alg' && name !== 'kid' && name !== 'typ') {
      throw bad(`the JWT header ${JSON.stringify(name.slice(0, 50))} is not allowed`, 'header')
    }
  }
  const alg = header.alg
  const algs: readonly string[] = options.algorithms ?? allowedJwtAlgs
  if (typeof alg !== 'string' || !algs.includes(alg)) {
    throw bad(`the algorithm ${JSON.stringify(String(alg).slice(0, 20))} is not allowed`, 'alg')
  }
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') {
    throw bad('typ, when present, is JWT or JOSE', 'typ')
  }
  if (header.kid !== undefined && typeof header.kid !== 'string')
    throw bad('kid is a string', 'kid')
  if (typeof payload.sub !== 'string') throw bad('sub is missing', 'sub')
  let td: string
  try {
    td = parseSpiffeId(payload.sub).trustDomain
  } catch {
    throw bad('sub is not a SPIFFE ID', 'sub')
  }
  const bundle =
    'jwtAuthorities' in bundles ? bundles : (bundles as ReadonlyMap<string, TrustBundle>).get(td)
  if (bundle === undefined || bundle.trustDomain !== td) {
    throw bad(`no bundle for the trust domain ${td}`, 'no-bundle')
  }
  const candidates =
    header.kid === undefined
      ? bundle.jwtAuthorities
      : bundle.jwtAuthorities.filter((a) => a.kid === header.kid)
  if (candidates.length === 0) throw bad('the kid is not in the bundle', 'unknown-kid')
  let verified = false
  for (const authority of candidates) {
    try {
      if (
        verifySignature(
          alg as JwtSvidAlg,
          keyOf(authority),
          authority.publicKey,
          signingInput,
          signature,
        )
      ) {
        verified = true
        break
      }
    } catch {
      // An unusable key or a malformed signature is a failed verification.
    }
  }
  if (!verified) throw bad('the signature does not verify', 'signature')
  const leeway = options.leewaySeconds ?? 0
  const t = now.getTime() / 1000
  if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp))
    throw bad('exp is missing', 'exp')
  if (t > payload.exp + leeway) throw bad('the token has expired', 'expired')
  if (payload.nbf !== undefined) {
    if (typeof payload.nbf !== 'number') throw bad('nbf is not a number', 'nbf')
    if (t + leeway < payload.nbf) throw bad('the token is not valid yet', 'nbf')
  }
  const aud = payload.aud
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : undefined
  if (auds === undefined || auds.length === 0 || !auds.every((a) => typeof a === 'string')) {
    throw bad('aud is missing', 'aud')
  }
  if (!auds.includes(audience)) throw bad('the audience is not in aud', 'audience')
  return {
    spiffeId: payload.sub,
    claims: { ...payload },
    header: {
      alg: alg as JwtSvidAlg,
      ...(typeof header.kid === 'string' ? { kid: header.kid } : {}),
      ...(typeof header.typ === 'string' ? { typ: header.typ } : {}),
    },
  }
}
