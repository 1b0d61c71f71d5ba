import { TesseraError } from '../errors.js'
import type { CertificateAuthority, JwtSvidResult } from '../ca/ca-types.js'
import { systemClock, type Clock } from '../runtime/clock.js'

/**
 * RFC 8693 token exchange. A caller presents a subject token (a CI pipeline's OIDC token, a
 * workload's JWT-SVID, or for an AI agent the human's or parent agent's delegated token) and, for
 * delegation, an actor token (the agent's own JWT-SVID). It receives a short-lived JWT-SVID bound to
 * one audience. With an actor, the new token's `act` claim carries the whole delegation chain
 * (RFC 8693 §4.1: the outermost `act` is the current actor, nested ones the earlier actors) and its
 * scope is the intersection of what was asked for and what the subject token held: it never widens.
 */

export const grantTypeTokenExchange = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const tokenTypeJwt = 'urn:ietf:params:oauth:token-type:jwt'
export const tokenTypeIdToken = 'urn:ietf:params:oauth:token-type:id_token'
export const tokenTypeAccessToken = 'urn:ietf:params:oauth:token-type:access_token'
const acceptedSubjectTypes = new Set([tokenTypeJwt, tokenTypeIdToken, tokenTypeAccessToken])

/** The form fields of an exchange request (RFC 8693 §2.1), plus Tessera's `intent`. */
export interface TokenExchangeRequest {
  grant_type?: string
  subject_token?: string
  subject_token_type?: string
  actor_token?: string
  actor_token_type?: string
  audience?: string
  resource?: string
  scope?: string
  requested_token_type?: string
  /** Seconds the caller wants; capped by policy. */
  requested_ttl?: string
  /** What the agent declares it is about to do; recorded in the token and the issuance record. */
  intent?: string
}

/** The successful answer (RFC 8693 §2.2.1). */
export interface TokenExchangeResponse {
  access_token: string
  issued_token_type: typeof tokenTypeJwt
  token_type: 'Bearer'
  expires_in: number
  scope?: string
}

/** A delegation chain link as it appears in `act`: the actor and, nested, the one before it. */
export interface ActClaim {
  sub: string
  act?: ActClaim
}

/** What a verifier learned from a presented token. */
export interface VerifiedToken {
  /** The SPIFFE ID the token stands for (OIDC subjects are mapped to one by the verifier's rules). */
  spiffeId: string
  /** Scopes the token carries; undefined when it carries no scope claim (not delegated). */
  scopes?: string[]
  /** The delegation chain already in the token. */
  act?: ActClaim
  /** Scopes the mapping rule allows this subject at most (OIDC subjects). */
  allowedScopes?: string[]
  jti?: string
  expiresAt?: Date
  /** Which verifier accepted it, for the record (e.g. `jwt-svid`, `oidc:https://token.actions…`). */
  via: string
}

/**
 * One kind of token the exchange accepts. `accepts` looks at the unverified token cheaply (issuer,
 * key id) to pick a verifier; `verify` checks it fully and throws TSR_EXCHANGE_INVALID_TOKEN.
 */
export interface SubjectTokenVerifier {
  readonly name: string
  accepts(token: string): boolean
  verify(token: string): Promise<VerifiedToken>
}

export interface TokenExchangePolicy {
  /** Longest lifetime of an issued token, seconds (default 300). */
  maxTtlSeconds?: number
  /** Default lifetime, seconds (default 300, capped by maxTtlSeconds). */
  defaultTtlSeconds?: number
  /** Most actors an `act` chain may hold, the new one included (default 5). */
  maxChainDepth?: number
  /** Audiences a token may be issued for; undefined: any (one per token). */
  allowedAudiences?: readonly string[]
}

export interface TokenExchangeDeps {
  ca: Pick<CertificateAuthority, 'mintJwtSvid'>
  verifiers: readonly SubjectTokenVerifier[]
  /** Refuses tokens whose SPIFFE ID or jti is on the deny-list. */
  isRevoked?: (q: { spiffeId: string; jti?: string }) => Promise<boolean>
  policy?: TokenExchangePolicy
  clock?: Clock
  /**
   * Governance policy (src/policy/governance): checked before a token is minted; a violation is
   * refused with TSR_POLICY_VIOLATION naming the rule and the fix.
   */
  governance?: {
    checkExchange(request: {
      spiffeId: string
      via: string
      ttlSeconds: number
      actor?: string
    }): Promise<void>
  }
}

export interface TokenExchangeResult {
  response: TokenExchangeResponse
  svid: JwtSvidResult
  subject: VerifiedToken
  actor?: VerifiedToken
  chain: string[]
  intent?: string
}

export interface TokenExchange {
  exchange(request: TokenExchangeRequest): Promise<TokenExchangeResult>
}

const scopeTokenPattern = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/
const maxIntent = 500

/** Splits an OAuth scope string (RFC 6749 §3.3) into distinct scope tokens. */
export function parseScope(scope: string | undefined, field = 'scope'): string[] | undefined {
  if (scope === undefined) return undefined
  const parts = scope.split(' ').filter((s) => s !== '')
  for (const p of parts) {
    if (!scopeTokenPattern.test(p)) {
      throw exchangeError('invalid_scope', `${field} holds an invalid scope token`)
    }
  }
  return [...new Set(parts)]
}

/** The actors of a chain, current first. */
export function chainOf(act: ActClaim | undefined): string[] {
  const out: string[] = []
  for (let a = act; a !== undefined; a = a.act) out.push(a.sub)
  return out
}

/** Builds the nested `act` claim for `actors`, current first. */
export function actClaim(actors: readonly string[]): ActClaim | undefined {
  let act: ActClaim | undefined
  for (let i = actors.length - 1; i >= 0; i--) act = { sub: actors[i]!, ...(act ? { act } : {}) }
  return act
}

/** A TesseraError with the RFC 6749 §5.2 error code the token endpoint answers with. */
export function exchangeError(oauthError: OAuthErrorCode, message: string): TesseraError {
  const code =
    oauthError === 'invalid_grant'
      ? 'TSR_EXCHANGE_INVALID_TOKEN'
      : oauthError === 'unauthorized_client' || oauthError === 'invalid_target'
        ? 'TSR_EXCHANGE_DENIED'
        : 'TSR_VALIDATION'
  return new TesseraError(code, message, { details: { oauthError } })
}

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_grant'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unauthorized_client'

export function createTokenExchange(deps: TokenExchangeDeps): TokenExchange {
  const clock = deps.clock ?? systemClock
  const maxTtl = deps.policy?.maxTtlSeconds ?? 300
  const defaultTtl = Math.min(deps.policy?.defaultTtlSeconds ?? 300, maxTtl)
  const maxDepth = deps.policy?.maxChainDepth ?? 5

  async function verify(token: string, role: 'subject' | 'actor'): Promise<VerifiedToken> {
    const verifier = deps.verifiers.find((v) => v.accepts(token))
    if (!verifier) {
      throw exchangeError('invalid_grant', `the ${role} token is from no issuer this server trusts`)
    }
    const verified = await verifier.verify(token)
    if (verified.expiresAt && verified.expiresAt.getTime() <= clock.now().getTime()) {
      throw exchangeError('invalid_grant', `the ${role} token has expired`)
    }
    if (
      deps.isRevoked &&
      (await deps.isRevoked({
        spiffeId: verified.spiffeId,
        ...(verified.jti ? { jti: verified.jti } : {}),
      }))
    ) {
      throw exchangeError('invalid_grant', `the ${role} token has been revoked`)
    }
    return verified
  }

  return {
    async exchange(req) {
      if (req.grant_type !== grantTypeTokenExchange) {
        throw exchangeError(
          'unsupported_grant_type',
          `grant_type must be ${grantTypeTokenExchange}`,
        )
      }
      if (!req.subject_token) throw exchangeError('invalid_request', 'subject_token is required')
      if (!req.subject_token_type || !acceptedSubjectTypes.has(req.subject_token_type)) {
        throw exchangeError(
          'invalid_request',
          'subject_token_type must be a JWT, id_token or access_token token type URI',
        )
      }
      if ((req.actor_token === undefined) !== (req.actor_token_type === undefined)) {
        throw exchangeError(
          'invalid_request',
          'actor_token and actor_token_type come together (RFC 8693 §2.1)',
        )
      }
      if (req.actor_token_type !== undefined && req.actor_token_type !== tokenTypeJwt) {
        throw exchangeError('invalid_request', `actor_token_type must be ${tokenTypeJwt}`)
      }
      if (req.requested_token_type !== undefined && req.requested_token_type !== tokenTypeJwt) {
        throw exchangeError('invalid_target', `only ${tokenTypeJwt} tokens are issued`)
      }
      const audience = req.audience ?? req.resource
      if (!audience) {
        throw exchangeError('invalid_request', 'audience is required: a token is bound to one')
      }
      if (audience.length > 512 || /\s/.test(audience)) {
        throw exchangeError('invalid_target', 'audience must be one value without spaces')
      }
      const allowed = deps.policy?.allowedAudiences
      if (allowed && !allowed.includes(audience)) {
        throw exchangeError('invalid_target', `tokens for audience ${audience} are not issued`)
      }
      if (req.intent !== undefined && (req.intent.length > maxIntent || req.intent === '')) {
        throw exchangeError('invalid_request', `intent is 1 to ${maxIntent} characters`)
      }
      let ttl = defaultTtl
      if (req.requested_ttl !== undefined) {
        const n = Number(req.requested_ttl)
        if (!/^\d{1,9}$/.test(req.requested_ttl) || n < 1) {
          throw exchangeError('invalid_request', 'requested_ttl is a whole number of seconds')
        }
        ttl = Math.min(n, maxTtl)
      }
      const requested = parseScope(req.scope)

      const subject = await verify(req.subject_token, 'subject')
      const actor = req.actor_token ? await verify(req.actor_token, 'actor') : undefined

      // The scope can only narrow: what the subject token held (or its rule allows), intersected
      // with what is asked for. A request without scope inherits the subject's.
      const ceiling = subject.scopes ?? subject.allowedScopes
      let scopes: string[] | undefined
      if (requested !== undefined && ceiling !== undefined) {
        scopes = requested.filter((s) => ceiling.includes(s))
        if (scopes.length === 0) {
          throw exchangeError(
            'invalid_scope',
            'none of the requested scopes is held by the subject token',
          )
        }
      } else {
        scopes = requested ?? ceiling
      }
      if (actor && scopes === undefined) {
        throw exchangeError(
          'invalid_scope',
          'a delegated token needs a scope: ask for one, or present a subject token that has one',
        )
      }

      const priorChain = chainOf(subject.act)
      const chain = actor ? [actor.spiffeId, ...priorChain] : priorChain
      if (chain.length > maxDepth) {
        throw exchangeError(
          'unauthorized_client',
          `the delegation chain would hold ${chain.length} actors; at most ${maxDepth} are allowed`,
        )
      }
      if (actor && priorChain.includes(actor.spiffeId)) {
        throw exchangeError(
          'unauthorized_client',
          `${actor.spiffeId} is already in the delegation chain (no loops)`,
        )
      }

      await deps.governance?.checkExchange({
        spiffeId: subject.spiffeId,
        via: subject.via,
        ttlSeconds: ttl,
        ...(actor ? { actor: actor.spiffeId } : {}),
      })
      const act = actClaim(chain)
      const claims: Record<string, unknown> = {}
      if (act) claims.act = act
      if (scopes !== undefined) claims.scope = scopes.join(' ')
      if (req.intent !== undefined) claims.intent = req.intent
      const svid = await deps.ca.mintJwtSvid({
        spiffeId: subject.spiffeId,
        audience: [audience],
        ttlSeconds: ttl,
        claims,
      })
      const expiresIn = Math.max(
        1,
        Math.round((svid.expiresAt.getTime() - clock.now().getTime()) / 1000),
      )
      return {
        response: {
          access_token: svid.token,
          issued_token_type: tokenTypeJwt,
          token_type: 'Bearer',
          expires_in: expiresIn,
          ...(scopes !== undefined ? { scope: scopes.join(' ') } : {}),
        },
        svid,
        subject,
        ...(actor ? { actor } : {}),
        chain,
        ...(req.intent !== undefined ? { intent: req.intent } : {}),
      }
    },
  }
}
