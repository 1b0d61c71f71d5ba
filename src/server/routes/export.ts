import { Readable } from 'node:stream'
import { Type } from 'typebox'
import type { Inventory } from '../../inventory/inventory-types.js'
import type { Observation } from '../../inventory/observation.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { InstantQuery, problemResponses } from '../schemas.js'
import { optionalDate } from './query.js'

export const ndjsonContentType = 'application/x-ndjson'

export function registerExportRoutes(
  app: TesseraApp,
  deps: { inventory: Pick<Inventory, 'exportObservations'> },
): void {
  app.get(
    '/v1/export',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['inventory'],
        summary: 'Export every current (or as-of) fact as NDJSON observations',
        description:
          'One observation per line, in a stable order; the output can be imported again with POST /v1/observations or `tessera inventory import`. Streamed: a failure midway ends the stream early, so check that the last line is complete.',
        security: bearerSecurity,
        querystring: Type.Object(
          { at: Type.Optional(InstantQuery('export the facts as of this past instant')) },
          { additionalProperties: false },
        ),
        produces: [ndjsonContentType],
        response: {
          200: {
            description: 'NDJSON stream of observations',
            // A plain JSON schema, not TypeBox: the handler sends a stream, not a typed value.
            content: { 'application/x-ndjson': { schema: { type: 'string' } } },
          },
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      const observations = deps.inventory.exportObservations({ at: optionalDate(request.query.at) })
      const lines = ndjsonLines(observations)
      // Pull the first chunk before the 200 goes out, so a store that is down gives a problem
      // response rather than an empty 200.
      const first = await lines.next()
      async function* all(): AsyncGenerator<string> {
        if (first.done) return
        yield first.value
        yield* lines
      }
      const stream = Readable.from(all(), { objectMode: false })
      // The schema describes the body as a string; the body goes out as a stream of that string.
      return reply
        .type(ndjsonContentType)
        .header('cache-control', 'no-store')
        .send(stream as unknown as string)
    },
  )
}

/** Batches lines so a million observations are not a million socket writes. */
async function* ndjsonLines(observations: AsyncIterable<Observation>): AsyncGenerator<string> {
  let chunk = ''
  for await (const observation of observations) {
    chunk += JSON.stringify(observation) + '\n'
    if (chunk.length >= 64 * 1024) {
      yield chunk
      chunk = ''
    }
  }
  if (chunk) yield chunk
}
