import { Type } from 'typebox'
import { TesseraError } from '../../errors.js'
import { linkTypes, type Inventory, type LinkType } from '../../inventory/inventory-types.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { GraphSchema, InstantQuery, problemResponses } from '../schemas.js'
import { optionalDate } from './query.js'

const GraphQuery = Type.Object(
  {
    node: Type.String({
      minLength: 1,
      maxLength: 1000,
      description: 'start node: an identity, credential, owner or resource id or ref',
    }),
    depth: Type.Optional(Type.Integer({ minimum: 1, maximum: 6, default: 2 })),
    at: Type.Optional(InstantQuery('walk the graph as of this past instant')),
    edgeTypes: Type.Optional(
      Type.String({
        maxLength: 300,
        description: `comma-separated edge types to follow (default all): ${linkTypes.join(', ')}`,
      }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 500 })),
  },
  { additionalProperties: false },
)

export function registerGraphRoutes(
  app: TesseraApp,
  deps: { inventory: Pick<Inventory, 'neighbourhood'> },
): void {
  app.get(
    '/v1/graph',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['graph'],
        summary: 'Neighbourhood of a node in the identity graph',
        security: bearerSecurity,
        querystring: GraphQuery,
        response: { 200: GraphSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const q = request.query
      const graph = await deps.inventory.neighbourhood(q.node, {
        depth: q.depth,
        at: optionalDate(q.at),
        edgeTypes: parseEdgeTypes(q.edgeTypes),
        limit: q.limit,
      })
      if (!graph) {
        throw new TesseraError('TSR_NOT_FOUND', `no node ${JSON.stringify(q.node)}`)
      }
      return graph
    },
  )
}

function parseEdgeTypes(value: string | undefined): LinkType[] | undefined {
  if (value === undefined || value.trim() === '') return undefined
  const out: LinkType[] = []
  for (const raw of value.split(',')) {
    const t = raw.trim()
    if (!(linkTypes as readonly string[]).includes(t)) {
      throw new TesseraError(
        'TSR_VALIDATION',
        `unknown edge type ${JSON.stringify(t)}; expected any of ${linkTypes.join(', ')}`,
        {
          details: {
            errors: [{ in: 'querystring', path: '/edgeTypes', message: 'unknown edge type' }],
          },
        },
      )
    }
    out.push(t as LinkType)
  }
  return out
}
