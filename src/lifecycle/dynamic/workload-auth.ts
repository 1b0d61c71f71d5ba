import { createHash, randomUUID, type KeyObject, X509Certificate } from 'node:crypto'
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose'
import { parseCertChain, uriSans, verifyChain } from '../../attestation/x509-chain.js'
import type { CertificateAuthority } from '../../ca/ca-types.js'
import { TesseraError } from '../../errors.js'
import type { Clock } from '../../runtime/clock.js'

/**
 * How a workload proves who it is to `POST /v1/dynamic/{backend}` (docs/dynamic-credentials.md):
 *
 * - an X509-SVID proof: a compact JWS (`typ` tessera-workload+jwt, ES256) signed with the SVID's
 *   private key, the SVID chain in `x5c`, over `{htm, htu, iat, jti, bh}`: the method, the path and
 *   query, the time, a one-time id and the SHA-256 of the body. The chain must lead to this trust
 *   domain's X.509 authorities; the proof is good for 60 s, once.
 * - a JWT-SVID whose audience is `spiffe://<trust domain>/tessera/dynamic`, checked with the CA's
 *   JWT keys. A bearer token: it is not bound to the request, so keep its TTL short.
 *
 * Either goes in `Authorization: Bearer …`. Agent SVIDs are refused: they are not workloads.
 */
export const workloadProofType = 'tessera-workload+jwt'

export const dynamicAudience = (trustDomain: string) => `spiffe://${trustDomain}/tessera/dynamic`

export interface AuthenticatedWorkload {
  spiffeId: string
  via: 'x509-svid' | 'jwt-svid'
  /** The X509-SVID's serial (lower-case hex), for the deny-list. */
  serial?: string
  jti?: string
}

export interface WorkloadAuthDeps {
  ca: Pick<CertificateAuthority, 'bundle' | 'validateJwtSvid' | 'trustDomain'>
  clock: Clock
  /** Whether any of these is on the deny-list (a revoked workload is refused). */
  isRevoked: (query: { spiffeId: string; serial?: string; jti?: string }) => Promise<boolean>
  /** How old (or early) a proof's `iat` may be (default 60 s). */
  proofMaxAgeSeconds?: number
}

export interface WorkloadRequest {
  authorization: string | undefined
  method: string
  /** The request target as sent: path and query. */
  pathAndQuery: string
  /** The raw body bytes (empty for none). */
  body: string | Uint8Array
}

export interface WorkloadAuthenticator {
  authenticate(request: WorkloadRequest): Promise<AuthenticatedWorkload>
}

const maxToken = 32 * 1024

function unauthenticated(why: string): TesseraError {
  return new TesseraError('TSR_DYNAMIC_UNAUTHENTICATED', `workload SVID: ${why}`)
}

/** base64url SHA-256 of the body: the proof's `bh`. */
export function bodyHash(body: string | Uint8Array): string {
  return createHash('sha256').update(body).digest('base64url')
}

export function createWorkloadAuthenticator(deps: WorkloadAuthDeps): WorkloadAuthenticator {
  const { ca, clock } = deps
  const maxAgeMs = (deps.proofMaxAgeSeconds ?? 60) * 1000
  const prefix = `spiffe://${ca.trustDomain}/`
  const audience = dynamicAudience(ca.trustDomain)
  // Proof ids seen within their window (per replica): a replayed proof is refused.
  const seen = new Map<string, number>()
  let roots: { sequence: number; certs: X509Certificate[] } | undefined

  async function trustedRoots(): Promise<X509Certificate[]> {
    const b = await ca.bundle()
    if (!roots || roots.sequence !== b.sequence) {
      roots = { sequence: b.sequence, certs: b.x509Authorities.map((d) => new X509Certificate(d)) }
    }
    return roots.certs
  }

  function remember(key: string, nowMs: number): boolean {
    if (seen.size > 50_000) for (const [k, exp] of seen) if (exp < nowMs) seen.delete(k)
    if (seen.has(key)) return false
    seen.set(key, nowMs + 2 * maxAgeMs)
    return true
  }

  function checkWorkloadId(spiffeId: string | undefined): string {
    if (!spiffeId?.startsWith(prefix) || spiffeId.length === prefix.length) {
      throw unauthenticated('not a SPIFFE ID of this trust domain')
    }
    if (spiffeId.startsWith(`${prefix}spire/agent/`)) {
      throw unauthenticated('an agent SVID is not a workload SVID')
    }
    return spiffeId
  }

  async function x509(token: string, request: WorkloadRequest): Promise<AuthenticatedWorkload> {
    const now = clock.now()
    let leaf: X509Certificate
    let payload: Record<string, unknown>
    try {
      const header = decodeProtectedHeader(token)
      const chain = parseCertChain(header.x5c)
      if (typeof chain === 'string') throw unauthenticated(`x5c: ${chain}`)
      const verified = verifyChain(chain, await trustedRoots(), now)
      if (!verified.ok) throw unauthenticated(verified.reason)
      leaf = chain[0]!
      if (leaf.ca) throw unauthenticated('the first certificate is a CA, not an SVID')
      const result = await compactVerify(token, leaf.publicKey, { algorithms: ['ES256'] })
      const parsed: unknown = JSON.parse(new TextDecoder().decode(result.payload))
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw unauthenticated('the proof payload is not an object')
      }
      payload = parsed as Record<string, unknown>
    } catch (err) {
      if (err instanceof TesseraError) throw err
      throw unauthenticated('not a valid proof signed with the SVID key')
    }
    const sans = uriSans(leaf)
    if (sans.length !== 1) throw unauthenticated('an X509-SVID has exactly one URI SAN')
    const spiffeId = checkWorkloadId(sans[0])
    if (payload.htm !== request.method || payload.htu !== request.pathAndQuery) {
      throw unauthenticated('the proof was signed for another request')
    }
    if (payload.bh !== bodyHash(request.body)) {
      throw unauthenticated('the proof was signed for another body')
    }
    const iat = typeof payload.iat === 'number' ? payload.iat * 1000 : NaN
    if (!(Math.abs(now.getTime() - iat) <= maxAgeMs)) throw unauthenticated('expired or early')
    if (typeof payload.jti !== 'string' || payload.jti.length < 8 || payload.jti.length > 128) {
      throw unauthenticated('jti missing')
    }
    if (!remember(`${spiffeId} ${payload.jti}`, now.getTime())) throw unauthenticated('replayed')
    return {
      spiffeId,
      via: 'x509-svid',
      serial: leaf.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
    }
  }

  async function jwt(token: string): Promise<AuthenticatedWorkload> {
    let validated
    try {
      validated = await ca.validateJwtSvid(token, audience)
    } catch {
      throw unauthenticated(`not a valid JWT-SVID for the audience ${audience}`)
    }
    const spiffeId = checkWorkloadId(validated.spiffeId)
    const jti = validated.claims.jti
    return { spiffeId, via: 'jwt-svid', ...(typeof jti === 'string' ? { jti } : {}) }
  }

  return {
    async authenticate(request) {
      const token =
        typeof request.authorization === 'string'
          ? /^Bearer +([\x21-\x7e]+) *$/i.exec(request.authorization)?.[1]
          : undefined
      if (!token) {
        throw unauthenticated('missing (Authorization: Bearer <SVID proof or JWT-SVID>)')
      }
      if (token.length > maxToken) throw unauthenticated('too long')
      let typ: unknown
      try {
        typ = decodeProtectedHeader(token).typ
      } catch {
        throw unauthenticated('not a JWS')
      }
      const who = typ === workloadProofType ? await x509(token, request) : await jwt(token)
      const denied = await deps.isRevoked({
        spiffeId: who.spiffeId,
        ...(who.serial ? { serial: who.serial } : {}),
        ...(who.jti ? { jti: who.jti } : {}),
      })
      if (denied) throw new TesseraError('TSR_DYNAMIC_DENIED', `${who.spiffeId} is revoked`)
      return who
    },
  }
}

/** Signs an X509-SVID proof for one request (the client side: CLI, tests, workloads' helpers). */
export async function signWorkloadProof(input: {
  /** DER certificates, leaf first. */
  chain: readonly Uint8Array[]
  key: KeyObject
  method: string
  pathAndQuery: string
  body: string | Uint8Array
  now: Date
}): Promise<string> {
  const payload = {
    htm: input.method,
    htu: input.pathAndQuery,
    iat: Math.floor(input.now.getTime() / 1000),
    jti: randomUUID(),
    bh: bodyHash(input.body),
  }
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({
      alg: 'ES256',
      typ: workloadProofType,
      x5c: input.chain.map((c) => Buffer.from(c).toString('base64')),
    })
    .sign(input.key)
}
