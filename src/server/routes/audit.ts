import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { eventJson } from '../../audit/chain.js'
import type { EventSink } from '../../audit/event-sink.js'
import { queryEvents } from '../../audit/query.js'
import { verifyChain } from '../../audit/verify.js'
import type { Store } from '../../store/store.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'
import { optionalDate } from './query.js'

const nullableString = Type.Union([Type.String(), Type.Null()])

export const AuditEventSchema = Type.Object(
  {
    seq: Type.Integer(),
    at: Type.String({ format: 'date-time' }),
    type: Type.String(),
    actor: nullableString,
    subject: nullableString,
    resource: nullableString,
    action: nullableString,
    decision: nullableString,
    requestId: nullableString,
    data: Type.Object({}, { additionalProperties: true }),
    prevHash: Type.String(),
    hash: Type.String(),
  },
  { title: 'AuditEvent' },
)

const IssueSchema = Type.Object({
  kind: Type.Enum(['edited', 'missing', 'reordered', 'relinked', 'duplicate'], { type: 'string' }),
  seq: Type.Integer(),
  at: Type.Optional(Type.String({ format: 'date-time' })),
  message: Type.String(),
})

const Position = Type.Object({ seq: Type.Integer(), hash: Type.String() })

/** The audit log over HTTP: query with cursor paging (read scope), chain verification (admin). */
export function registerAuditRoutes(app: TesseraApp, deps: { store: Pick<Store, 'db'> }): void {
  app.get(
    '/v1/audit/events',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['audit'],
        summary: 'Audit events matching the filters, newest first (cursor paging)',
        security: bearerSecurity,
        querystring: Type.Object(
          {
            subject: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
            actor: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
            resource: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
            action: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
            type: Type.Optional(
              Type.String({ maxLength: 66, description: 'a type, or a prefix with .* (entry.*)' }),
            ),
            decision: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            from: Type.Optional(Type.String({ format: 'date-time', description: 'inclusive' })),
            to: Type.Optional(Type.String({ format: 'date-time', description: 'exclusive' })),
            order: Type.Optional(Type.Enum(['asc', 'desc'], { type: 'string' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            cursor: Type.Optional(Type.String({ maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(AuditEventSchema),
            nextCursor: Type.Optional(Type.String()),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const q = request.query
      const from = optionalDate(q.from)
      const to = optionalDate(q.to)
      const page = await queryEvents(deps.store.db, {
        ...q,
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
      } as Parameters<typeof queryEvents>[1])
      return {
        items: page.items.map(eventJson),
        ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
      }
    },
  )

  app.get(
    '/v1/audit/verify',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['audit'],
        summary: 'Walk the hash chain and report every edited, missing or reordered event',
        security: bearerSecurity,
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            checked: Type.Integer(),
            last: Type.Optional(Position),
            head: Type.Optional(Position),
            issues: Type.Array(IssueSchema),
          }),
          ...problemResponses(401, 403),
        },
      },
    },
    async () => verifyChain(deps.store.db),
  )
}

const mutating = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * One `admin.api` event per mutating call to a token-protected route: the token id, method, route
 * pattern (not the URL: ids in paths stay out of the action), status and request id. Never bodies,
 * headers or query strings. It runs on `onSend`, so the response leaves only once its event is
 * durable; a failed event write is logged, not turned into a failed response (the change is made).
 */
export function registerAdminAuditHook(app: FastifyInstance, deps: { events: EventSink }): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (!mutating.has(request.method)) return payload
    if (request.routeOptions.config.scope === undefined) return payload
    const route = request.routeOptions.url ?? 'unknown'
    const status = reply.statusCode
    const token = request.apiToken
    await deps.events
      .append({
        type: 'admin.api',
        actor: token ? `api-token:${token.id}` : 'anonymous',
        resource: route,
        action: `${request.method} ${route}`,
        ...(status === 401 || status === 403 ? { decision: 'deny' } : {}),
        requestId: request.id,
        data: {
          method: request.method,
          route,
          status,
          ...(token?.name ? { tokenName: token.name } : {}),
        },
      })
      .catch((err: unknown) => request.log.error({ err }, 'recording the admin.api event failed'))
    return payload
  })
}
