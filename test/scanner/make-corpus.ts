// Regenerates test/scanner/corpus and its labels: `npx tsx test/scanner/make-corpus.ts`.
import { rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { writeCorpus } from './corpus-builder.js'

const dir = fileURLToPath(new URL('./corpus/', import.meta.url))
rmSync(dir, { recursive: true, force: true })
const labels = writeCorpus(dir)
writeFileSync(
  new URL('./corpus-labels.json', import.meta.url),
  JSON.stringify(labels, null, 2) + '\n',
)
process.stdout.write(`${labels.length} labels\n`)
