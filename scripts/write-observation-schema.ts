/**
 * Writes docs/observation.schema.json, the published JSON Schema (2020-12) of the observation
 * contract, from the TypeBox schemas in src/inventory/observation-schema.ts.
 *
 *   npx tsx scripts/write-observation-schema.ts [--check]
 *
 * `--check` writes nothing and exits 1 when the committed file is out of date (a test does the
 * same).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { format, resolveConfig } from 'prettier'
import {
  ObservationBatchSchema,
  ObservationSchema,
  observationTypes,
  observationVariantSchemas,
} from '../src/inventory/observation-schema.js'

export const observationSchemaPath = fileURLToPath(
  new URL('../docs/observation.schema.json', import.meta.url),
)
export const observationSchemaId = 'https://tessera.dev/schemas/observation.schema.json'

const plain = (schema: unknown): Record<string, unknown> => JSON.parse(JSON.stringify(schema))

const defName = (type: string) => `${type.charAt(0).toUpperCase()}${type.slice(1)}Observation`

/** The JSON Schema document: one observation at the root, each variant and the batch in $defs. */
export function observationJsonSchema(): Record<string, unknown> {
  const $defs: Record<string, unknown> = {}
  for (const type of observationTypes) $defs[defName(type)] = plain(observationVariantSchemas[type])
  const batch = plain(ObservationBatchSchema)
  const batchProperties = batch.properties as Record<string, Record<string, unknown>>
  batchProperties.observations!.items = { $ref: '#' }
  $defs.ObservationBatch = batch
  const union = plain(ObservationSchema)
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: observationSchemaId,
    title: 'Tessera observation',
    description:
      `${String(union.description)} One object per line of an import file (JSON Lines); ` +
      '`POST /v1/observations` takes an `ObservationBatch`. Generated from ' +
      'src/inventory/observation-schema.ts by scripts/write-observation-schema.ts; do not edit.',
    oneOf: observationTypes.map((type) => ({ $ref: `#/$defs/${defName(type)}` })),
    $defs,
  }
}

/** The file's exact text (prettier-formatted, as `npm run format:check` expects). */
export async function renderObservationSchema(): Promise<string> {
  const config = await resolveConfig(observationSchemaPath)
  return format(JSON.stringify(observationJsonSchema(), null, 2), {
    ...config,
    filepath: observationSchemaPath,
  })
}

async function main(args: string[]): Promise<void> {
  const text = await renderObservationSchema()
  if (args.includes('--check')) {
    let current = ''
    try {
      current = readFileSync(observationSchemaPath, 'utf8')
    } catch {
      // missing counts as out of date
    }
    if (current !== text) {
      process.stderr.write(`${observationSchemaPath} is out of date; run without --check\n`)
      process.exitCode = 1
    }
    return
  }
  writeFileSync(observationSchemaPath, text)
  process.stdout.write(`wrote ${observationSchemaPath}\n`)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2))
}
