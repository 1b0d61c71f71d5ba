/**
 * Writes docs/openapi.json from the server's route schemas. Run after changing a route:
 * `npx tsx scripts/write-openapi.ts`. A test fails while the committed file is stale.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { generateOpenApiDocument } from '../src/server/openapi.js'

const target = fileURLToPath(new URL('../docs/openapi.json', import.meta.url))
writeFileSync(target, await generateOpenApiDocument())
console.log(`wrote ${target}`)
