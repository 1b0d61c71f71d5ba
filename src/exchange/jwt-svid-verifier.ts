import { decodeJwt } from 'jose'
import type { CertificateAuthority } from '../ca/ca-types.js'
import { exchangeError, type ActClaim, type SubjectTokenVerifier } from './token-exchange.js'

const maxActDepth = 16

/**
 * Accepts JWT-SVIDs of this trust domain presented to the token endpoint: the signature, expiry and
 * audience are checked by the CA (the token must name `audience`, the endpoint's own, so an SVID
 * meant for another service cannot be replayed here). A delegated token's `scope` and `act` are
 * carried over.
 */
export function createJwtSvidVerifier(deps: {
  ca: Pick<CertificateAuthority, 'validateJwtSvid' | 'trustDomain'>
  audience: string
}): SubjectTokenVerifier {
  const prefix = `spiffe://${deps.ca.trustDomain}/`
  return {
    name: 'jwt-svid',
    accepts(token) {
      try {
        const sub = decodeJwt(token).sub
        return typeof sub === 'string' && sub.startsWith(prefix)
      } catch {
        return false
      }
    },
    async verify(token) {
      let validated
      try {
        validated = await deps.ca.validateJwtSvid(token, deps.audience)
      } catch (err) {
        throw exchangeError(
          'invalid_grant',
          `the JWT-SVID was refused: ${(err as Error).message ?? 'invalid'}`,
        )
      }
      const { claims } = validated
      const scope = claims.scope
      if (scope !== undefined && typeof scope !== 'string') {
        throw exchangeError('invalid_grant', 'the token scope claim is not a string')
      }
      const act = claims.act === undefined ? undefined : parseAct(claims.act, 0)
      const exp = typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : undefined
      return {
        spiffeId: validated.spiffeId,
        ...(scope !== undefined ? { scopes: [...new Set(scope.split(' ').filter(Boolean))] } : {}),
        ...(act ? { act } : {}),
        ...(typeof claims.jti === 'string' ? { jti: claims.jti } : {}),
        ...(exp ? { expiresAt: exp } : {}),
        via: 'jwt-svid',
      }
    },
  }
}

/** Reads an `act` claim: nested objects, each with a string `sub`. */
function parseAct(value: unknown, depth: number): ActClaim {
  if (depth >= maxActDepth) throw exchangeError('invalid_grant', 'the act claim nests too deep')
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw exchangeError('invalid_grant', 'the act claim is not an object')
  }
  const { sub, act } = value as { sub?: unknown; act?: unknown }
  if (typeof sub !== 'string' || sub === '') {
    throw exchangeError('invalid_grant', 'an act claim has no sub')
  }
  return act === undefined ? { sub } : { sub, act: parseAct(act, depth + 1) }
}
