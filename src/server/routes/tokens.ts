import { Type } from 'typebox'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import type { TesseraApp } from '../app-types.js'
import { createApiToken, listApiTokens, revokeApiToken } from '../auth/api-tokens.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import {
  ApiTokenViewSchema,
  CreatedApiTokenSchema,
  problemResponses,
  ScopeSchema,
} from '../schemas.js'

export function registerTokenRoutes(app: TesseraApp, deps: { store: Store; clock: Clock }): void {
  app.post(
    '/v1/tokens',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['tokens'],
        summary: 'Create an API token (the token is in this response only)',
        security: bearerSecurity,
        body: Type.Object(
          {
            name: Type.String({ pattern: '^[\\w.@:-]{1,100}$' }),
            scopes: Type.Array(ScopeSchema, { minItems: 1, maxItems: 3, uniqueItems: true }),
            ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 315_360_000 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: CreatedApiTokenSchema, ...problemResponses(400, 401, 403, 415) },
      },
    },
    async (request, reply) => {
      const created = await createApiToken(deps.store, request.body, deps.clock)
      request.log.info({ tokenId: created.id, scopes: created.scopes }, 'api token created')
      return reply.code(201).header('cache-control', 'no-store').send(created)
    },
  )

  app.get(
    '/v1/tokens',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['tokens'],
        summary: 'List API tokens (never their secrets or hashes)',
        security: bearerSecurity,
        response: {
          200: Type.Object({ items: Type.Array(ApiTokenViewSchema) }),
          ...problemResponses(401, 403),
        },
      },
    },
    async () => ({ items: await listApiTokens(deps.store) }),
  )

  app.delete(
    '/v1/tokens/:id',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['tokens'],
        summary: 'Revoke an API token',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: {
          204: { type: 'null', description: 'revoked' },
          ...problemResponses(401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      await revokeApiToken(deps.store, request.params.id, deps.clock)
      request.log.info({ tokenId: request.params.id }, 'api token revoked')
      return reply.code(204).send(null)
    },
  )
}
