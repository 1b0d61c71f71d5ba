import { TesseraError } from '../errors.js'
import { chainOf, type ActClaim } from '../exchange/token-exchange.js'
import { parseSpiffeId } from '../spiffe/id.js'
import { validateJwtSvid } from '../spiffe/jwt-svid.js'
import type { TrustBundle } from '../spiffe/types.js'
import { validateX509Svid } from '../spiffe/x509-svid.js'

/**
 * The forms a principal takes in an authorization request, and their verification:
 * - a SPIFFE ID (or any identity ref of the graph) as a string, or `{ type: 'spiffe_id', id }`:
 *   asserted by the caller, which must have authenticated the workload itself;
 * - `{ type: 'jwt_svid', token, audience? }`: a JWT-SVID, verified against the trust bundles (this
 *   trust domain's JWT keys and federated ones) for `audience`;
 * - `{ type: 'x509_svid', chain }`: the mTLS peer's certificate chain as PEM, leaf first, verified
 *   against the bundle of the leaf's trust domain. Tessera's API is plain HTTP behind a proxy, so the
 *   caller (the proxy or the service that terminated mTLS) passes the chain it saw;
 * - `{ type: 'exchanged_token', token, audience? }`: a token from token exchange (a JWT-SVID of this
 *   CA with `act`, `scope` and `intent` claims): its `act` chain becomes the delegation chain.
 */
export type PrincipalInput =
  | string
  | { type: 'spiffe_id'; id: string }
  | { type: 'jwt_svid'; token: string; audience?: string }
  | { type: 'x509_svid'; chain: string }
  | { type: 'exchanged_token'; token: string; audience?: string }

export type PresentedAs =
  'spiffe_id' | 'identity_ref' | 'jwt_svid' | 'x509_svid' | 'exchanged_token'

export interface ResolvedPrincipal {
  /** The identity ref the decision is about (the SPIFFE ID for workloads). */
  id: string
  presentedAs: PresentedAs
  trustDomain?: string
  /** SPIFFE ID path segments after `/ns/`, when the ID follows the Kubernetes convention. */
  namespace?: string
  jti?: string
  serial?: string
  /** Actors of the delegation chain, current first (from `act`). */
  chain: string[]
  scopes: string[]
  intent?: string
}

export interface PrincipalVerifierDeps {
  /** Trust bundles by trust domain (this one's and federated ones). */
  bundles: () => ReadonlyMap<string, TrustBundle>
  /** Audience a JWT must name when the request gives none. */
  defaultAudience: string
}

const maxRef = 2048
const maxChainPem = 64 * 1024
const maxToken = 16 * 1024

function invalid(message: string, reason: string): TesseraError {
  return new TesseraError('TSR_VALIDATION', message, { details: { reason } })
}

/** Splits PEM text into DER certificates (leaf first); refuses anything but CERTIFICATE blocks. */
export function pemCertificates(pem: string): Buffer[] {
  if (pem.length > maxChainPem) throw invalid('the certificate chain is too large', 'chain-size')
  const out: Buffer[] = []
  const block = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g
  let m: RegExpExecArray | null
  while ((m = block.exec(pem)) !== null) {
    if (m[1] !== 'CERTIFICATE') throw invalid(`the chain holds a ${m[1]} block`, 'chain-block')
    const b64 = m[2]!.replace(/\s+/g, '')
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw invalid('a PEM block is not base64', 'chain-pem')
    out.push(Buffer.from(b64, 'base64'))
  }
  if (out.length === 0) throw invalid('the chain holds no PEM certificate', 'chain-empty')
  return out
}

function spiffeParts(id: string): { trustDomain: string; namespace?: string } {
  const parsed = parseSpiffeId(id)
  const segments = parsed.path.split('/')
  const k = segments.indexOf('ns')
  const namespace = k >= 0 ? segments[k + 1] : undefined
  return { trustDomain: parsed.trustDomain, ...(namespace ? { namespace } : {}) }
}

function readAct(value: unknown, depth = 0): ActClaim | undefined {
  if (value === undefined) return undefined
  if (depth >= 16 || typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TesseraError('TSR_JWT_SVID_INVALID', 'the act claim is malformed', {
      details: { reason: 'act' },
    })
  }
  const { sub, act } = value as { sub?: unknown; act?: unknown }
  if (typeof sub !== 'string' || sub === '') {
    throw new TesseraError('TSR_JWT_SVID_INVALID', 'an act claim has no sub', {
      details: { reason: 'act' },
    })
  }
  const inner = readAct(act, depth + 1)
  return inner ? { sub, act: inner } : { sub }
}

/** Verifies a principal. Throws TSR_VALIDATION (malformed), TSR_JWT_SVID_INVALID or TSR_X509_SVID_INVALID. */
export function resolvePrincipal(
  input: PrincipalInput,
  now: Date,
  deps: PrincipalVerifierDeps,
): ResolvedPrincipal {
  const asserted =
    typeof input === 'string' ? input : input.type === 'spiffe_id' ? input.id : undefined
  if (asserted !== undefined) {
    if (asserted === '' || asserted.length > maxRef) {
      throw invalid(`a principal is 1 to ${maxRef} characters`, 'principal')
    }
    if (asserted.startsWith('spiffe://')) {
      let parts
      try {
        parts = spiffeParts(asserted)
      } catch (err) {
        throw invalid(`principal: ${(err as Error).message}`, 'spiffe-id')
      }
      return { id: asserted, presentedAs: 'spiffe_id', ...parts, chain: [], scopes: [] }
    }
    if (typeof input !== 'string') throw invalid('principal id is not a SPIFFE ID', 'spiffe-id')
    return { id: asserted, presentedAs: 'identity_ref', chain: [], scopes: [] }
  }
  if (typeof input === 'string' || input.type === 'spiffe_id') {
    throw invalid('unknown principal type', 'principal-type')
  }
  switch (input.type) {
    case 'jwt_svid':
    case 'exchanged_token': {
      if (typeof input.token !== 'string' || input.token.length > maxToken) {
        throw invalid('the token is missing or too long', 'token')
      }
      const v = validateJwtSvid(
        input.token,
        deps.bundles(),
        input.audience ?? deps.defaultAudience,
        now,
      )
      const claims = v.claims
      const act = readAct(claims.act)
      const scope = typeof claims.scope === 'string' ? claims.scope : ''
      return {
        id: v.spiffeId,
        presentedAs: input.type,
        ...spiffeParts(v.spiffeId),
        ...(typeof claims.jti === 'string' ? { jti: claims.jti } : {}),
        chain: chainOf(act),
        scopes: [...new Set(scope.split(' ').filter(Boolean))],
        ...(typeof claims.intent === 'string' && claims.intent !== ''
          ? { intent: claims.intent }
          : {}),
      }
    }
    case 'x509_svid': {
      if (typeof input.chain !== 'string') throw invalid('chain is a PEM string', 'chain')
      const v = validateX509Svid(pemCertificates(input.chain), deps.bundles(), now)
      return {
        id: v.spiffeId,
        presentedAs: 'x509_svid',
        ...spiffeParts(v.spiffeId),
        serial: v.leaf.serialNumber.toLowerCase(),
        chain: [],
        scopes: [],
      }
    }
    default:
      throw invalid('unknown principal type', 'principal-type')
  }
}
