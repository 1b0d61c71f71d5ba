import type { Registry } from 'prom-client'
import { Type } from 'typebox'
import { TesseraError } from '../../errors.js'
import type { Store } from '../../store/store.js'
import type { TesseraApp } from '../app-types.js'
import { problemResponses } from '../schemas.js'

const Status = Type.Object({ status: Type.Literal('ok') })

export function registerHealthRoutes(
  app: TesseraApp,
  deps: { store: Pick<Store, 'ping'>; registry: Registry; metricsRequireToken: boolean },
): void {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process is up',
        response: { 200: Status },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: the store answers',
        response: { 200: Status, ...problemResponses(503) },
      },
    },
    async () => {
      try {
        await deps.store.ping()
      } catch (err) {
        throw new TesseraError('TSR_STORE_UNAVAILABLE', 'the store does not answer', { cause: err })
      }
      return { status: 'ok' as const }
    },
  )

  app.get(
    '/metrics',
    {
      config: { scope: 'read', loopbackPublic: !deps.metricsRequireToken },
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics',
        description: deps.metricsRequireToken
          ? 'Needs a token with the read scope.'
          : 'Public to loopback callers; others need a token with the read scope.',
        security: [{ bearerAuth: [] }, {}],
        produces: ['text/plain'],
        response: {
          200: {
            description: 'Prometheus text exposition format',
            content: { 'text/plain': { schema: Type.String() } },
          },
          ...problemResponses(401, 403),
        },
      },
    },
    async (_request, reply) => {
      const body = await deps.registry.metrics()
      return reply.type(deps.registry.contentType).send(body)
    },
  )
}
