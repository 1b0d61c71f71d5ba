import { createHash } from 'node:crypto'
import { Type } from 'typebox'
import { TesseraError } from '../../errors.js'
import { maxBatchRequests, type AuthzService } from '../../policy/index.js'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { scopeAllows, verifyApiToken, type VerifiedApiToken } from '../auth/api-tokens.js'
import { problemResponses } from '../schemas.js'

const Str = (max: number) => Type.String({ minLength: 1, maxLength: max })

export const PrincipalSchema = Type.Union(
  [
    Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'a SPIFFE ID (or another identity ref of the graph), asserted by the caller',
    }),
    Type.Object(
      { type: Type.Literal('spiffe_id'), id: Str(2048) },
      { additionalProperties: false, title: 'SpiffeIdPrincipal' },
    ),
    Type.Object(
      { type: Type.Literal('jwt_svid'), token: Str(16384), audience: Type.Optional(Str(512)) },
      { additionalProperties: false, title: 'JwtSvidPrincipal' },
    ),
    Type.Object(
      {
        type: Type.Literal('x509_svid'),
        chain: Type.String({
          minLength: 1,
          maxLength: 65536,
          description: "the mTLS peer's chain, PEM, leaf first (passed by the TLS terminator)",
        }),
      },
      { additionalProperties: false, title: 'X509SvidPrincipal' },
    ),
    Type.Object(
      {
        type: Type.Literal('exchanged_token'),
        token: Str(16384),
        audience: Type.Optional(Str(512)),
      },
      { additionalProperties: false, title: 'ExchangedTokenPrincipal' },
    ),
  ],
  { title: 'Principal' },
)

const ContextSchema = Type.Object(
  {
    namespace: Type.Optional(Str(1024)),
    environment: Type.Optional(Str(1024)),
    selectors: Type.Optional(Type.Array(Str(1024), { maxItems: 64 })),
    sourceNode: Type.Optional(Str(1024)),
    sourceAddress: Type.Optional(Str(1024)),
    intent: Type.Optional(Str(1024)),
    delegationChain: Type.Optional(Type.Array(Str(1024), { maxItems: 16 })),
  },
  {
    additionalProperties: false,
    title: 'AuthzContext',
    description:
      'What the caller knows; trust domain, time, scopes and (for tokens) the delegation chain are derived (docs/authorization.md)',
  },
)

export const AuthzRequestSchema = Type.Object(
  {
    principal: PrincipalSchema,
    action: Str(2048),
    resource: Str(2048),
    context: Type.Optional(ContextSchema),
  },
  { additionalProperties: false, title: 'AuthzRequest' },
)

export const AuthzDecisionSchema = Type.Object(
  {
    decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
    determiningPolicies: Type.Array(Type.String()),
    errors: Type.Array(
      Type.Object({ policy: Type.Optional(Type.String()), message: Type.String() }),
    ),
    decisionId: Type.String({ format: 'uuid' }),
    principal: Type.Optional(Type.String()),
    reason: Type.Optional(
      Type.Object({
        code: Type.Union([Type.Literal('revoked'), Type.Literal('principal_invalid')]),
        message: Type.String(),
        revocation: Type.Optional(
          Type.Object({
            id: Type.Integer(),
            targetType: Type.String(),
            value: Type.String(),
            reason: Type.Union([Type.String(), Type.Null()]),
          }),
        ),
      }),
    ),
  },
  { title: 'AuthzDecision' },
)

/**
 * A bearer check for the decision routes, with verified tokens remembered for `ttlMs` (keyed by a
 * hash of the token): a decision must not cost a store round trip for its caller's token. A revoked
 * API token therefore keeps deciding for at most `ttlMs`.
 */
function createCachedTokenCheck(deps: { store: Store; clock: Clock; ttlMs: number }) {
  const cache = new Map<string, { token: VerifiedApiToken; until: number }>()
  return async (header: string | undefined): Promise<VerifiedApiToken> => {
    const match = typeof header === 'string' ? /^Bearer +([\x21-\x7e]+) *$/i.exec(header) : null
    if (!match) {
      throw new TesseraError(
        'TSR_AUTH_MISSING',
        'this endpoint needs an Authorization: Bearer token',
      )
    }
    const key = createHash('sha256').update(match[1]!).digest('base64url')
    const now = deps.clock.now().getTime()
    const hit = cache.get(key)
    let token: VerifiedApiToken
    if (hit && hit.until > now) token = hit.token
    else {
      const result = await verifyApiToken(deps.store, match[1]!, deps.clock)
      if (!result.ok) {
        cache.delete(key)
        throw new TesseraError(
          'TSR_AUTH_INVALID',
          'the bearer token is unknown, expired or revoked',
        )
      }
      token = result.token
      if (cache.size >= 10_000) cache.clear()
      cache.set(key, { token, until: now + deps.ttlMs })
    }
    if (!scopeAllows(token.scopes, 'authz')) {
      throw new TesseraError('TSR_AUTH_SCOPE', 'this endpoint needs a token with the authz scope', {
        details: { requiredScope: 'authz' },
      })
    }
    return token
  }
}

/**
 * `POST /v1/authorize` and `POST /v1/authorize/batch`: Cedar decisions for callers holding an API
 * token with the `authz` scope (or any wider one). Each answer is in the audit log when it is sent.
 */
export function registerAuthorizeRoutes(
  app: TesseraApp,
  deps: { authz: AuthzService; store: Store; clock: Clock; tokenCacheMs?: number },
): void {
  const check = createCachedTokenCheck({
    store: deps.store,
    clock: deps.clock,
    ttlMs: deps.tokenCacheMs ?? 5000,
  })
  // This scope's own bearer check (the global hook skips routes without config.scope).
  app.addHook('onRequest', async (request) => {
    request.apiToken = await check(request.headers.authorization)
  })
  const { authorizer } = deps.authz

  app.post(
    '/v1/authorize',
    {
      schema: {
        tags: ['authorization'],
        summary: 'One Cedar decision: allow or deny, the determining policies and a decision id',
        description:
          'Needs a token with the `authz` scope. The deny-list wins over every policy. See docs/authorization.md.',
        security: bearerSecurity,
        body: AuthzRequestSchema,
        response: { 200: AuthzDecisionSchema, ...problemResponses(400, 401, 403, 415) },
      },
    },
    async (request) => authorizer.authorize(request.body, { durable: true }),
  )

  app.post(
    '/v1/authorize/batch',
    {
      schema: {
        tags: ['authorization'],
        summary: `Up to ${maxBatchRequests} decisions in one call, answered in order`,
        security: bearerSecurity,
        body: Type.Object(
          { requests: Type.Array(AuthzRequestSchema, { minItems: 1, maxItems: maxBatchRequests }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ decisions: Type.Array(AuthzDecisionSchema) }),
          ...problemResponses(400, 401, 403, 415),
        },
      },
    },
    async (request) => ({
      decisions: await authorizer.authorizeBatch(request.body.requests, { durable: true }),
    }),
  )
}
