import { Worker } from 'node:worker_threads'
import { createDetector } from './engine.js'
import { scanBatch, type BatchResult, type BlockJob, type FileJob } from './content.js'
import type { RuleSpec } from './types.js'

/** Runs scan batches on worker threads, or in this thread when `size` is 0. */
export interface ScanPool {
  run(files: FileJob[], blocks: BlockJob[]): Promise<BatchResult>
  close(): Promise<void>
}

const workerUrl = new URL(
  import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js',
  import.meta.url,
)

export function createScanPool(rules: RuleSpec[], key: Uint8Array, size: number): ScanPool {
  if (size <= 0) {
    const detector = createDetector(rules, key)
    return {
      run: async (files, blocks) => scanBatch(detector, files, blocks),
      close: async () => {},
    }
  }
  interface Slot {
    worker: Worker
    busy: boolean
  }
  type Task = {
    files: FileJob[]
    blocks: BlockJob[]
    resolve: (r: BatchResult) => void
    reject: (e: Error) => void
  }
  const queue: Task[] = []
  const pending = new Map<number, Task>()
  let nextId = 0
  let failure: Error | undefined
  const slots: Slot[] = []
  for (let i = 0; i < size; i++) {
    const worker = new Worker(workerUrl, { workerData: { rules, key } })
    const slot: Slot = { worker, busy: false }
    worker.on('message', (msg: { id: number; result?: BatchResult; error?: string }) => {
      const task = pending.get(msg.id)
      pending.delete(msg.id)
      slot.busy = false
      if (task) {
        if (msg.result) task.resolve(msg.result)
        else task.reject(new Error(msg.error ?? 'scanner worker failed'))
      }
      pump()
    })
    worker.on('error', (err) => {
      failure = err
      for (const t of pending.values()) t.reject(err)
      pending.clear()
      for (const t of queue.splice(0)) t.reject(err)
    })
    slots.push(slot)
  }
  function pump() {
    for (const slot of slots) {
      if (slot.busy) continue
      const task = queue.shift()
      if (!task) return
      const id = nextId++
      pending.set(id, task)
      slot.busy = true
      slot.worker.postMessage({ id, files: task.files, blocks: task.blocks })
    }
  }
  return {
    run(files, blocks) {
      if (failure) return Promise.reject(failure)
      return new Promise((resolve, reject) => {
        queue.push({ files, blocks, resolve, reject })
        pump()
      })
    },
    async close() {
      await Promise.all(slots.map((s) => s.worker.terminate()))
    },
  }
}
