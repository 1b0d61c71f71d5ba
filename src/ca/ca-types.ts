import type { KeyObject } from 'node:crypto'
import type { TrustBundle } from '../spiffe/types.js'

/** Who asked for an SVID: recorded on the issuance row. */
export interface IssueContext {
  agentId?: string
  entryId?: string
}

export interface X509SvidRequest {
  spiffeId: string
  /**
   * The workload's public key (ECDSA P-256 by default); the CA never sees the private key. A
   * KeyObject, or its SubjectPublicKeyInfo DER as received on the wire (cheaper: no re-encoding).
   */
  publicKey: KeyObject | Uint8Array
  /** Seconds; capped at the signing CA's own expiry. Default 3600. */
  ttlSeconds?: number
  dnsNames?: readonly string[]
}

export interface X509SvidResult {
  spiffeId: string
  /** Leaf first, then intermediates up to (not including) the root; DER. */
  certChain: Buffer[]
  /** Lower-case hex, unique per trust domain. */
  serial: string
  notBefore: Date
  notAfter: Date
}

export interface JwtSvidRequest {
  spiffeId: string
  audience: readonly string[]
  /** Seconds. Default 300. */
  ttlSeconds?: number
  /** Extra claims (e.g. `act`, `scope` for token exchange). `sub`, `aud`, `exp`, `iat`, `jti` win. */
  claims?: Record<string, unknown>
}

export interface JwtSvidResult {
  token: string
  spiffeId: string
  jti: string
  kid: string
  issuedAt: Date
  expiresAt: Date
}

export interface ValidatedJwtSvid {
  spiffeId: string
  claims: Record<string, unknown>
}

/**
 * The signing side of a trust domain. Implemented by src/ca; consumed by the control plane's agent
 * API and token exchange. Every issued SVID is recorded in `issuance` (in batches).
 */
export interface CertificateAuthority {
  readonly trustDomain: string
  signX509Svids(requests: readonly X509SvidRequest[], ctx?: IssueContext): Promise<X509SvidResult[]>
  mintJwtSvid(request: JwtSvidRequest, ctx?: IssueContext): Promise<JwtSvidResult>
  /** Checks signature (ES256 only, kid from our bundle), `exp`, and that `audience` is in `aud`. */
  validateJwtSvid(token: string, audience: string): Promise<ValidatedJwtSvid>
  /** The current bundle (published keys include prepared ones: publish before use). */
  bundle(): Promise<TrustBundle>
}
