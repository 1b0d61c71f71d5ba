import { parentPort, workerData } from 'node:worker_threads'
import { createDetector } from './engine.js'
import { scanBatch, type BlockJob, type FileJob } from './content.js'
import type { RuleSpec } from './types.js'

/** A scanner worker: builds its own detector from the rules and key, then scans batches. */
const data = workerData as { rules: RuleSpec[]; key: Uint8Array }
const detector = createDetector(data.rules, data.key)

parentPort!.on('message', (msg: { id: number; files: FileJob[]; blocks: BlockJob[] }) => {
  try {
    parentPort!.postMessage({ id: msg.id, result: scanBatch(detector, msg.files, msg.blocks) })
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: (err as Error).message })
  }
})
