import type { FastifyInstance, FastifyRequest } from 'fastify'
import { TesseraError } from '../../errors.js'
import type { Clock } from '../../runtime/clock.js'
import type { TokenScope } from '../../store/schema.js'
import type { Store } from '../../store/store.js'
import { scopeAllows, verifyApiToken, type VerifiedApiToken } from './api-tokens.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Scope a bearer token needs for this route; routes without one are public. */
    scope?: TokenScope
    /** Public from loopback addresses, else `scope` applies (used by /metrics). */
    loopbackPublic?: boolean
  }
  interface FastifyRequest {
    /** The verified caller, on routes that need a token. */
    apiToken: VerifiedApiToken | undefined
  }
}

/** The OpenAPI security requirement of a route that needs a token. */
export const bearerSecurity = [{ bearerAuth: [] }]

/**
 * Checks `Authorization: Bearer <token>` on every route that declares `config.scope`. It runs on
 * `onRequest`, before the body is read, so an unauthenticated caller cannot make the server buffer
 * a large body.
 */
export function registerAuthHook(app: FastifyInstance, deps: { store: Store; clock: Clock }): void {
  app.decorateRequest('apiToken', undefined)
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config
    const needed = config.scope
    if (needed === undefined) return
    if (config.loopbackPublic && isLoopback(request)) return
    const presented = bearerToken(request)
    if (presented === undefined) {
      throw new TesseraError(
        'TSR_AUTH_MISSING',
        'this endpoint needs an Authorization: Bearer token',
      )
    }
    const result = await verifyApiToken(deps.store, presented, deps.clock)
    if (!result.ok) {
      throw new TesseraError('TSR_AUTH_INVALID', 'the bearer token is unknown, expired or revoked')
    }
    if (!scopeAllows(result.token.scopes, needed)) {
      throw new TesseraError(
        'TSR_AUTH_SCOPE',
        `this endpoint needs a token with the ${needed} scope`,
        {
          details: { requiredScope: needed },
        },
      )
    }
    request.apiToken = result.token
  })
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header !== 'string') return undefined
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header)
  return match?.[1]
}

function isLoopback(request: FastifyRequest): boolean {
  const address = request.socket.remoteAddress ?? ''
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}
