import { Type } from 'typebox'
import type { Store } from '../../store/store.js'
import { grantedButUnused, recordUsage } from '../../inventory/usage/index.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const DateTime = Type.String({ format: 'date-time' })
const Text = Type.String({ minLength: 1, maxLength: 2048 })

export const UsageBatchSchema = Type.Object(
  {
    source: Type.String({ minLength: 1, maxLength: 256 }),
    mode: Type.Optional(Type.Union([Type.Literal('replace'), Type.Literal('add')])),
    rows: Type.Array(
      Type.Object(
        {
          identity: Text,
          resource: Text,
          action: Text,
          hour: DateTime,
          count: Type.Integer({ minimum: 0, maximum: 2_000_000_000 }),
          lastAt: DateTime,
        },
        { additionalProperties: false },
      ),
      { maxItems: 100_000 },
    ),
    credentials: Type.Optional(Type.Record(Type.String({ maxLength: 2048 }), DateTime)),
    accessKeys: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), DateTime)),
  },
  { additionalProperties: false, title: 'UsageBatch' },
)

export const UnusedGrantSchema = Type.Object(
  {
    identityId: Type.String(),
    identityRef: Type.String(),
    resourceRef: Type.String(),
    via: Type.Union([Type.String(), Type.Null()]),
    unusedActions: Type.Array(Type.String()),
    usedActions: Type.Array(Type.String()),
    lastUsedAt: Type.Union([DateTime, Type.Null()]),
    grantedSince: DateTime,
  },
  { title: 'UnusedGrant' },
)

/** Usage aggregated per hour (imports from access logs) and the granted-but-unused analysis. */
export function registerUsageRoutes(app: TesseraApp, deps: { store: Store }): void {
  app.post(
    '/v1/usage',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['inventory'],
        summary:
          'Record usage aggregated per hour (idempotent per source); raises last_used_at of identities and credentials',
        security: bearerSecurity,
        body: UsageBatchSchema,
        response: {
          200: Type.Object({
            written: Type.Integer(),
            unchanged: Type.Integer(),
            identitiesTouched: Type.Integer(),
            credentialsTouched: Type.Integer(),
          }),
          ...problemResponses(400, 401, 403, 413, 415),
        },
      },
    },
    async (request) => {
      const b = request.body
      return recordUsage(
        { store: deps.store },
        { rows: b.rows, credentials: b.credentials ?? {}, accessKeys: b.accessKeys ?? {} },
        { source: b.source, ...(b.mode ? { mode: b.mode } : {}) },
      )
    },
  )

  app.get(
    '/v1/usage/unused',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['inventory'],
        summary: 'Grants with actions that saw no usage since an instant',
        security: bearerSecurity,
        querystring: Type.Object(
          {
            since: DateTime,
            includeNewerGrants: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ since: DateTime, items: Type.Array(UnusedGrantSchema) }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const since = new Date(request.query.since)
      const items = await grantedButUnused({
        db: deps.store.db,
        since,
        onlyOlderGrants: request.query.includeNewerGrants !== true,
      })
      return { since: since.toISOString(), items }
    },
  )
}
