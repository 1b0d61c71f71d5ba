import { Type } from 'typebox'
import { TesseraError } from '../../errors.js'
import type { Inventory } from '../../inventory/inventory-types.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import {
  IdentityDetailSchema,
  IdentityKindSchema,
  IdentityPageSchema,
  InstantQuery,
  problemResponses,
} from '../schemas.js'
import { optionalDate } from './query.js'

const ListQuery = Type.Object(
  {
    kind: Type.Optional(IdentityKindSchema),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    owner: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'owner ref' })),
    state: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    unusedSince: Type.Optional(
      InstantQuery('identities with no use since this instant (never used counts as unused)'),
    ),
    expiresBefore: Type.Optional(
      InstantQuery('identities holding a credential that expires before this instant'),
    ),
    q: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'case-insensitive name substring' }),
    ),
    at: Type.Optional(InstantQuery('answer as of this past instant')),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1000,
        description: 'nextCursor of the previous page',
      }),
    ),
  },
  { additionalProperties: false },
)

export function registerIdentityRoutes(
  app: TesseraApp,
  deps: { inventory: Pick<Inventory, 'listIdentities' | 'getIdentity'> },
): void {
  app.get(
    '/v1/identities',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['identities'],
        summary: 'List identities',
        description:
          'Filters combine with AND. Pages are keyed by an opaque cursor: pass `nextCursor` back as `cursor` with the same filters.',
        security: bearerSecurity,
        querystring: ListQuery,
        response: { 200: IdentityPageSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const q = request.query
      return deps.inventory.listIdentities({
        kind: q.kind,
        source: q.source,
        owner: q.owner,
        state: q.state,
        unusedSince: optionalDate(q.unusedSince),
        expiresBefore: optionalDate(q.expiresBefore),
        q: q.q,
        at: optionalDate(q.at),
        limit: q.limit,
        cursor: q.cursor,
      })
    },
  )

  app.get(
    '/v1/identities/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['identities'],
        summary: 'Show one identity with its owner, credentials, grants, usage and edges',
        description: 'By stable id or by ref (URL-encode refs such as ARNs).',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 1000 }) }),
        querystring: Type.Object(
          { at: Type.Optional(InstantQuery('answer as of this past instant')) },
          { additionalProperties: false },
        ),
        response: { 200: IdentityDetailSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const identity = await deps.inventory.getIdentity(
        request.params.id,
        optionalDate(request.query.at),
      )
      if (!identity) {
        throw new TesseraError(
          'TSR_NOT_FOUND',
          `no identity ${JSON.stringify(request.params.id)}${request.query.at ? ` at ${request.query.at}` : ''}`,
        )
      }
      return identity
    },
  )
}
