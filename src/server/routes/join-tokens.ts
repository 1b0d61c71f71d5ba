import { Type } from 'typebox'
import { createJoinToken, joinTokenLimits } from '../../attestation/join-tokens.js'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

export function registerJoinTokenRoutes(
  app: TesseraApp,
  deps: { store: Store; clock: Clock },
): void {
  app.post(
    '/v1/join-tokens',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['agents'],
        summary:
          'Create a single-use join token for one agent (the token is in this response only)',
        security: bearerSecurity,
        body: Type.Optional(
          Type.Object(
            {
              ttlSeconds: Type.Optional(
                Type.Integer({
                  minimum: joinTokenLimits.minTtlSeconds,
                  maximum: joinTokenLimits.maxTtlSeconds,
                  default: joinTokenLimits.defaultTtlSeconds,
                }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        response: {
          201: Type.Object({
            token: Type.String(),
            expiresAt: Type.String({ format: 'date-time' }),
          }),
          ...problemResponses(400, 401, 403, 415),
        },
      },
    },
    async (request, reply) => {
      const created = await createJoinToken(
        deps.store,
        {
          ...(request.body?.ttlSeconds === undefined
            ? {}
            : { ttlSeconds: request.body.ttlSeconds }),
          ...(request.apiToken ? { createdBy: request.apiToken.name } : {}),
        },
        deps.clock,
      )
      request.log.info({ expiresAt: created.expiresAt }, 'join token created')
      return reply.code(201).header('cache-control', 'no-store').send(created)
    },
  )
}
