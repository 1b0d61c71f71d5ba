import { Type } from 'typebox'
import { TesseraError } from '../../errors.js'
import type { Inventory } from '../../inventory/inventory-types.js'
import type { Observation } from '../../inventory/observation.js'
import { parseObservation } from '../../inventory/observation-parse.js'
import { observationLimits } from '../../inventory/observation-schema.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { IngestResultSchema, problemResponses } from '../schemas.js'
import { ndjsonContentType } from './export.js'

/** Most item errors a 422 lists; `invalidCount` says how many there were in all. */
const maxListedErrors = 100

/**
 * The envelope only: items are checked one by one with `parseObservation`, so a bad item is
 * reported by its index and reason instead of as one opaque schema error. The OpenAPI document
 * shows `ObservationBatchSchema` instead (the swagger `transform` in app.ts).
 */
const IngestBody = Type.Object(
  {
    observations: Type.Array(Type.Unknown(), {
      minItems: 1,
      maxItems: observationLimits.batchMaxObservations,
    }),
    runs: Type.Optional(
      Type.Object(
        {},
        {
          additionalProperties: Type.String({ minLength: 1, maxLength: 200 }),
          description: 'discovery run id per source, from POST /v1/runs',
        },
      ),
    ),
  },
  { additionalProperties: false },
)

const IngestQuery = Type.Object(
  {
    run: Type.Optional(
      Type.Array(Type.String({ pattern: '^[^=]+=[^=]+$', maxLength: 500 }), {
        maxItems: 100,
        description:
          'NDJSON bodies only: `<source>=<runId>`, repeatable (JSON bodies use the `runs` member)',
      }),
    ),
  },
  { additionalProperties: false },
)

export function registerObservationRoutes(
  app: TesseraApp,
  deps: { inventory: Pick<Inventory, 'ingest'> },
): void {
  // NDJSON: one observation per line, blank lines ignored. It becomes the same envelope as a JSON
  // body, so validation and ingestion are shared.
  app.addContentTypeParser(ndjsonContentType, { parseAs: 'string' }, (_request, body, done) => {
    const observations: unknown[] = []
    const lines = (body as string).split('\n')
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim()
      if (line === '') continue
      try {
        observations.push(JSON.parse(line))
      } catch {
        done(
          new TesseraError('TSR_VALIDATION', `line ${i + 1} of the NDJSON body is not valid JSON`, {
            details: { errors: [{ in: 'body', line: i + 1, message: 'not valid JSON' }] },
          }),
          undefined,
        )
        return
      }
    }
    done(null, { observations })
  })

  app.post(
    '/v1/observations',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['inventory'],
        summary: 'Ingest a batch of observations',
        description: `Idempotent: the same fact twice is one fact. Send \`application/json\` (\`{ observations, runs? }\`) or \`${ndjsonContentType}\` (one observation per line). If any item is invalid, nothing is ingested and the 422 lists each bad item's index and reason.`,
        security: bearerSecurity,
        consumes: ['application/json', ndjsonContentType],
        querystring: IngestQuery,
        body: IngestBody,
        response: {
          200: IngestResultSchema,
          ...problemResponses(400, 401, 403, 413, 415, 422),
        },
      },
    },
    async (request) => {
      const items = request.body.observations
      const observations: Observation[] = []
      const errors: Array<{ index: number; reason: string }> = []
      let invalidCount = 0
      for (let index = 0; index < items.length; index++) {
        const result = parseObservation(items[index])
        if (result.ok) {
          observations.push(result.observation)
        } else {
          invalidCount++
          if (errors.length < maxListedErrors) errors.push({ index, reason: result.reason })
        }
      }
      if (invalidCount > 0) {
        throw new TesseraError(
          'TSR_OBSERVATION_INVALID',
          `${invalidCount} of ${items.length} observations are invalid; nothing was ingested`,
          { details: { errors, invalidCount } },
        )
      }
      const runs = { ...request.body.runs, ...parseRunParams(request.query.run) } as Record<
        string,
        string
      >
      return deps.inventory.ingest(observations, Object.keys(runs).length > 0 ? { runs } : {})
    },
  )
}

function parseRunParams(values: readonly string[] | undefined): Record<string, string> {
  const runs: Record<string, string> = {}
  for (const value of values ?? []) {
    const sep = value.indexOf('=')
    runs[value.slice(0, sep)] = value.slice(sep + 1)
  }
  return runs
}
