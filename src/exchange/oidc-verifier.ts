import {
  claimAt,
  createOidcTokenVerifier,
  scalarValues,
  type OidcAttestorDeps,
  type OidcIssuerConfig,
} from '../attestation/oidc-attestor.js'
import { TesseraError } from '../errors.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import { exchangeError, type SubjectTokenVerifier } from './token-exchange.js'

/**
 * An OIDC issuer whose tokens the token endpoint accepts (a CI system, an IdP), with how a verified
 * token maps to a SPIFFE ID and at most which scopes it may be given.
 */
export interface OidcExchangeIssuer extends OidcIssuerConfig {
  /**
   * The SPIFFE ID path under this trust domain, with `{claim/path}` placeholders, e.g.
   * `/ci/github/{repository}/{ref}`. Each claim value must be made of SPIFFE path characters
   * (letters, digits, `.`, `-`, `_`, and `/` between segments); a token whose claims are not is
   * refused rather than rewritten, so two tokens can never map to one ID by accident.
   */
  spiffeIdPath: string
  /** The scopes tokens of this issuer may be exchanged for (the scope ceiling). */
  scopes?: string[]
}

const segmentPattern = /^[A-Za-z0-9._-]+$/

/** Fills `{claim}` placeholders; throws when a value would not make a valid SPIFFE ID path. */
export function spiffePathFromClaims(template: string, payload: Record<string, unknown>): string {
  const path = template.replace(/\{([^{}]+)\}/g, (_m, claim: string) => {
    const values = scalarValues(claimAt(payload, claim))
    if (values.length !== 1 || values[0] === '') {
      throw exchangeError('invalid_grant', `the token has no single value for claim ${claim}`)
    }
    return values[0]!
  })
  const segments = path.split('/').slice(1)
  if (
    !path.startsWith('/') ||
    segments.length === 0 ||
    segments.some((s) => !segmentPattern.test(s) || s === '.' || s === '..')
  ) {
    throw exchangeError(
      'invalid_grant',
      `the token's claims do not make a valid SPIFFE ID path (${JSON.stringify(path).slice(0, 200)})`,
    )
  }
  return path
}

/** Checks a template once at start-up: a leading `/`, placeholders or SPIFFE path characters. */
function checkTemplate(issuer: OidcExchangeIssuer, index: number): void {
  const stripped = issuer.spiffeIdPath?.replace(/\{[^{}]+\}/g, 'x')
  if (
    typeof stripped !== 'string' ||
    !stripped.startsWith('/') ||
    stripped
      .split('/')
      .slice(1)
      .some((s) => !segmentPattern.test(s))
  ) {
    throw new TesseraError(
      'TSR_CONFIG',
      `tokenExchange.oidc[${index}].spiffeIdPath must look like /ci/github/{repository}`,
    )
  }
}

export function createOidcExchangeVerifier(deps: {
  issuers: readonly OidcExchangeIssuer[]
  trustDomain: string
  fetch?: OidcAttestorDeps['fetch']
  clock?: Clock
}): SubjectTokenVerifier {
  deps.issuers.forEach(checkTemplate)
  const clock = deps.clock ?? systemClock
  const verifier = createOidcTokenVerifier(deps.issuers, {
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    label: 'token exchange (oidc)',
    fail: (message) => exchangeError('invalid_grant', `OIDC token refused: ${message}`),
  })
  return {
    name: 'oidc',
    accepts: (token) => verifier.knows(token),
    async verify(token) {
      const { config, payload } = await verifier.verify(token, clock.now())
      const issuer = config as OidcExchangeIssuer
      const path = spiffePathFromClaims(issuer.spiffeIdPath, payload)
      return {
        spiffeId: `spiffe://${deps.trustDomain}${path}`,
        ...(issuer.scopes ? { allowedScopes: [...issuer.scopes] } : {}),
        ...(typeof payload.jti === 'string' ? { jti: payload.jti } : {}),
        ...(typeof payload.exp === 'number' ? { expiresAt: new Date(payload.exp * 1000) } : {}),
        via: `oidc:${issuer.issuer}`,
      }
    },
  }
}
