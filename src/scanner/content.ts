import { readFileSync } from 'node:fs'
import type { Detector, DetectorCounters, TextSource } from './engine.js'
import type { Finding } from './types.js'

export interface FileJob {
  /** Absolute path to read. */
  path: string
  /** Path shown in findings (relative to the scan root). */
  file: string
}

export interface BlockJob {
  text: string
  source: TextSource
}

export interface BatchResult {
  findings: Finding[]
  files: number
  bytes: number
  skippedBinary: number
  unreadable: number
  suppressed: number
}

/** A NUL byte in the first 8000 bytes marks a binary file, as git decides it. */
export function isBinary(buf: Uint8Array): boolean {
  const n = Math.min(buf.length, 8000)
  for (let i = 0; i < n; i++) if (buf[i] === 0) return true
  return false
}

/** Scans a batch of files or history blocks with one detector (in a worker or in-process). */
export function scanBatch(
  detector: Detector,
  files: readonly FileJob[],
  blocks: readonly BlockJob[],
): BatchResult {
  const result: BatchResult = {
    findings: [],
    files: 0,
    bytes: 0,
    skippedBinary: 0,
    unreadable: 0,
    suppressed: 0,
  }
  const counters: DetectorCounters = { suppressed: 0 }
  for (const job of files) {
    let buf: Buffer
    try {
      buf = readFileSync(job.path)
    } catch {
      result.unreadable++
      continue
    }
    if (isBinary(buf)) {
      result.skippedBinary++
      continue
    }
    result.files++
    result.bytes += buf.length
    for (const f of detector.scan(buf.toString('utf8'), { file: job.file }, counters)) {
      result.findings.push(f)
    }
  }
  for (const block of blocks) {
    result.bytes += block.text.length
    for (const f of detector.scan(block.text, block.source, counters)) result.findings.push(f)
  }
  result.suppressed = counters.suppressed
  return result
}
