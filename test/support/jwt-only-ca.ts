import { randomUUID } from 'node:crypto'
import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose'
import type { CertificateAuthority } from '../../src/ca/ca-types.js'
import type { Clock } from '../../src/runtime/clock.js'

/**
 * The JWT half of a CertificateAuthority for tests of what consumes JWT-SVIDs (token exchange):
 * real ES256 signatures with jose, verification against its own key, no X.509.
 */
export async function createJwtOnlyCa(trustDomain: string, clock: Clock) {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  const kid = 'test-kid-1'
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'jwt-svid', alg: 'ES256' }
  const ca: Pick<CertificateAuthority, 'trustDomain' | 'mintJwtSvid' | 'validateJwtSvid'> = {
    trustDomain,
    async mintJwtSvid(req) {
      const now = clock.now()
      const iat = Math.floor(now.getTime() / 1000)
      const ttl = req.ttlSeconds ?? 300
      const jti = randomUUID()
      const token = await new SignJWT({ ...(req.claims ?? {}) })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
        .setSubject(req.spiffeId)
        .setAudience([...req.audience])
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttl)
        .setJti(jti)
        .sign(privateKey)
      return {
        token,
        spiffeId: req.spiffeId,
        jti,
        kid,
        issuedAt: new Date(iat * 1000),
        expiresAt: new Date((iat + ttl) * 1000),
      }
    },
    async validateJwtSvid(token, audience) {
      if (decodeProtectedHeader(token).kid !== kid) throw new Error('unknown kid')
      const { payload } = await jwtVerify(token, publicKey, {
        algorithms: ['ES256'],
        audience,
        currentDate: clock.now(),
      })
      if (typeof payload.sub !== 'string' || !payload.sub.startsWith('spiffe://')) {
        throw new Error('sub is not a SPIFFE ID')
      }
      return { spiffeId: payload.sub, claims: payload as Record<string, unknown> }
    },
  }
  return { ca, publicKey, jwk }
}
