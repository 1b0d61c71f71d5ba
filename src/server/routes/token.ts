import { Type } from 'typebox'
import { isTesseraError, TesseraError } from '../../errors.js'
import type {
  OAuthErrorCode,
  TokenExchange,
  TokenExchangeRequest,
} from '../../exchange/token-exchange.js'
import type { TesseraApp } from '../app-types.js'

const formContentType = 'application/x-www-form-urlencoded'
const fields = [
  'grant_type',
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'audience',
  'resource',
  'scope',
  'requested_token_type',
  'requested_ttl',
  'intent',
] as const

const OAuthErrorSchema = Type.Object(
  { error: Type.String(), error_description: Type.String() },
  { title: 'OAuthError', description: 'RFC 6749 §5.2 error response' },
)

/**
 * `POST /v1/token`: RFC 8693 token exchange. The presented tokens are the credentials, so no API
 * token is asked for. Bodies are form-encoded and errors are OAuth errors (RFC 6749 §5.2), as
 * OAuth clients expect, not problem+json.
 */
export function registerTokenExchangeRoute(
  app: TesseraApp,
  deps: { exchange: TokenExchange | undefined },
): void {
  app.addContentTypeParser(
    formContentType,
    { parseAs: 'string', bodyLimit: 64 * 1024 },
    (_request, body, done) => {
      const params = new URLSearchParams(body as string)
      const out: Record<string, string> = {}
      for (const [key, value] of params) {
        // RFC 6749 §3.2: a parameter must not appear more than once.
        if (key in out) {
          done(new TesseraError('TSR_VALIDATION', `parameter ${key} appears more than once`), {})
          return
        }
        out[key] = value
      }
      done(null, out)
    },
  )
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    let oauthError: OAuthErrorCode | 'server_error'
    if (isTesseraError(err)) {
      oauthError = (err.details?.oauthError as OAuthErrorCode | undefined) ?? 'invalid_request'
    } else if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      // Fastify's own: body validation, parsing, media type, size.
      oauthError = 'invalid_request'
    } else {
      oauthError = 'server_error'
    }
    void reply.header('cache-control', 'no-store')
    if (oauthError === 'server_error') {
      request.log.error({ err }, 'token exchange failed')
      return reply
        .code(500)
        .send({ error: 'server_error', error_description: 'an internal error occurred' })
    }
    request.log.info({ oauthError, reason: err.message }, 'token exchange refused')
    return reply.code(400).send({ error: oauthError, error_description: err.message })
  })

  app.post(
    '/v1/token',
    {
      schema: {
        tags: ['token exchange'],
        summary:
          'RFC 8693 token exchange: a CI OIDC token or JWT-SVID (and, to delegate, an actor JWT-SVID) for a short-lived JWT-SVID',
        security: [],
        consumes: [formContentType],
        body: Type.Object(
          Object.fromEntries(
            fields.map((f) => [f, Type.Optional(Type.String({ maxLength: 16_384 }))]),
          ),
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            access_token: Type.String(),
            issued_token_type: Type.String(),
            token_type: Type.String(),
            expires_in: Type.Integer(),
            scope: Type.Optional(Type.String()),
          }),
          400: OAuthErrorSchema,
        },
      },
    },
    async (request, reply) => {
      if (!deps.exchange) {
        throw new TesseraError(
          'TSR_VALIDATION',
          'token exchange is not enabled on this server (it needs the CA)',
          { details: { oauthError: 'unsupported_grant_type' } },
        )
      }
      const result = await deps.exchange.exchange(request.body as TokenExchangeRequest)
      request.log.info(
        {
          spiffeId: result.svid.spiffeId,
          jti: result.svid.jti,
          chain: result.chain,
          scope: result.response.scope,
          intent: result.intent,
          via: result.subject.via,
        },
        'token exchanged',
      )
      return reply
        .header('cache-control', 'no-store')
        .header('pragma', 'no-cache')
        .send(result.response)
    },
  )
}
