import { Type } from 'typebox'
import {
  revocationTargets,
  type RevocationList,
  type RevocationView,
} from '../../lifecycle/revocations.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'
import { optionalDate } from './query.js'

const TargetSchema = Type.Enum([...revocationTargets], { type: 'string' })

export const RevocationSchema = Type.Object(
  {
    id: Type.Integer(),
    targetType: TargetSchema,
    value: Type.String(),
    reason: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    createdBy: Type.Union([Type.String(), Type.Null()]),
  },
  { title: 'Revocation' },
)

/**
 * The deny-list. Reading it is public, like a CRL: relying parties check it without an API token,
 * and it holds identifiers only (SPIFFE IDs, serials, jtis, agent ids), never secrets.
 */
export function registerRevocationRoutes(
  app: TesseraApp,
  deps: { revocations: RevocationList },
): void {
  app.post(
    '/v1/revocations',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['revocation'],
        summary: 'Put a SPIFFE ID, serial, jti or agent on the deny-list (an agent is also banned)',
        security: bearerSecurity,
        body: Type.Object(
          {
            targetType: TargetSchema,
            value: Type.String({ minLength: 1, maxLength: 2048 }),
            reason: Type.Optional(Type.String({ maxLength: 500 })),
            expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: RevocationSchema, ...problemResponses(400, 401, 403, 404, 415) },
      },
    },
    async (request, reply) => {
      const expiresAt = optionalDate(request.body.expiresAt)
      const created = await deps.revocations.add({
        targetType: request.body.targetType,
        value: request.body.value,
        ...(request.body.reason === undefined ? {} : { reason: request.body.reason }),
        ...(expiresAt === undefined ? {} : { expiresAt }),
        createdBy: `api-token:${request.apiToken?.id ?? 'unknown'}`,
      })
      request.log.info(
        { revocationId: created.id, targetType: created.targetType, value: created.value },
        'revoked',
      )
      return reply.code(201).send(created)
    },
  )

  app.get(
    '/v1/revocations',
    {
      schema: {
        tags: ['revocation'],
        summary: 'The deny-list in id order; `after` gives only newer entries (incremental sync)',
        // Public on purpose (see above): OpenAPI's way of saying "no authentication".
        security: [],
        querystring: Type.Object(
          {
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            includeExpired: Type.Optional(Type.Boolean()),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(RevocationSchema), latest: Type.Integer() }),
          ...problemResponses(400),
        },
      },
    },
    async (request, reply) => {
      const page = await deps.revocations.list(request.query)
      void reply.header('cache-control', 'no-cache')
      return page satisfies { items: RevocationView[]; latest: number }
    },
  )
}
