import { Type } from 'typebox'
import type { Inventory } from '../../inventory/inventory-types.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses, RunCountsSchema, RunSummarySchema } from '../schemas.js'

export function registerRunRoutes(
  app: TesseraApp,
  deps: { inventory: Pick<Inventory, 'startRun' | 'finishRun'> },
): void {
  app.post(
    '/v1/runs',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['runs'],
        summary: 'Start a discovery run',
        description:
          'A `full` run closes, when it finishes successfully, every fact of its source it did not see; a `delta` run only adds and changes.',
        security: bearerSecurity,
        body: Type.Object(
          {
            source: Type.String({ minLength: 1, maxLength: 200 }),
            scope: Type.Union([Type.Literal('full'), Type.Literal('delta')]),
          },
          { additionalProperties: false },
        ),
        response: { 201: RunSummarySchema, ...problemResponses(400, 401, 403, 415) },
      },
    },
    async (request, reply) => {
      const run = await deps.inventory.startRun(request.body.source, request.body.scope)
      return reply.code(201).send(run)
    },
  )

  app.post(
    '/v1/runs/:id/finish',
    {
      config: { scope: 'write' },
      // `curl -X POST …/finish` with no body at all is a plain success.
      preValidation: async (request) => {
        request.body ??= {}
      },
      schema: {
        tags: ['runs'],
        summary: 'Finish a discovery run',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) }),
        body: Type.Object(
          {
            outcome: Type.Optional(
              Type.Union([Type.Literal('succeeded'), Type.Literal('failed')], {
                default: 'succeeded',
              }),
            ),
            counts: Type.Optional(RunCountsSchema),
          },
          { additionalProperties: false, description: 'optional: an empty body means succeeded' },
        ),
        response: { 200: RunSummarySchema, ...problemResponses(400, 401, 403, 404, 409, 415) },
      },
    },
    async (request) =>
      deps.inventory.finishRun(request.params.id, request.body.outcome, request.body.counts),
  )
}
