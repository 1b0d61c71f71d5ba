import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { mkdirSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { TesseraError } from '../errors.js'
import type { BatchResult, BlockJob, FileJob } from './content.js'
import {
  allCommits,
  cloneMirror,
  historyBlocks,
  isBareRepository,
  isGitRepository,
  isGitUrl,
  redactGitUrl,
} from './git.js'
import { noIgnore, parseIgnore, type IgnoreMatcher } from './ignore.js'
import { createScanPool } from './pool.js'
import { emptyStats, type Finding, type RuleSpec, type ScanStats } from './types.js'

export interface ScanOptions {
  /** A directory (a git work tree or not, or a bare repository) or a git URL. */
  target: string
  rules: RuleSpec[]
  /** Fingerprint key (32 bytes). */
  key: Uint8Array
  /** Also scan every commit reachable from any ref (always on for a URL or a bare repository). */
  history?: boolean
  /** Files larger than this are skipped and counted (default 10 MiB). */
  maxFileSize?: number
  /** Worker threads; 0 scans in this thread (default: available cores, at most 8). */
  workers?: number
  /** Incremental history: the commits already scanned are read from and written to this file. */
  stateFile?: string
  /** Findings whose `rule:fingerprint` is in the baseline are counted, not reported. */
  baseline?: ReadonlySet<string>
  /** Called after each batch with the counters and the findings so far. */
  onProgress?: (stats: ScanStats, findings: number) => void
}

export interface ScanResult {
  findings: Finding[]
  stats: ScanStats
  /** The repository, for locations: the redacted URL, or the git work tree's absolute path. */
  repository?: string
  /** Commits read this time (history scans). */
  commitsScanned: string[]
}

const batchFiles = 64
const batchBytes = 4 * 1024 * 1024

function toPosix(p: string): string {
  return sep === '/' ? p : p.split(sep).join('/')
}

/** Lists the files under `root`, honouring `.tesseraignore` and never entering `.git`. */
export function listFiles(
  root: string,
  stats: ScanStats,
  maxFileSize: number,
): { path: string; file: string; size: number }[] {
  let matcher: IgnoreMatcher = noIgnore
  try {
    matcher = parseIgnore(readFileSync(join(root, '.tesseraignore'), 'utf8'))
  } catch {
    // No ignore file.
  }
  const out: { path: string; file: string; size: number }[] = []
  const walk = (dir: string) => {
    let entries
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const abs = join(dir, e.name)
      const rel = toPosix(relative(root, abs))
      if (e.isDirectory()) {
        if (e.name === '.git') continue
        if (matcher.ignores(rel, true)) {
          stats.ignored++
          continue
        }
        walk(abs)
      } else if (e.isFile()) {
        if (matcher.ignores(rel, false)) {
          stats.ignored++
          continue
        }
        const size = statSync(abs).size
        if (size > maxFileSize) {
          stats.skippedLarge++
          continue
        }
        out.push({ path: abs, file: rel, size })
      }
    }
  }
  walk(root)
  return out
}

interface ScanState {
  version: 1
  commits: string[]
}

function readState(file: string): Set<string> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return new Set()
  }
  try {
    const s = JSON.parse(text) as ScanState
    if (s.version !== 1 || !Array.isArray(s.commits)) throw new Error('bad shape')
    return new Set(s.commits.filter((c) => typeof c === 'string'))
  } catch (err) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `scan state ${file} is not a scan state file: ${(err as Error).message}`,
    )
  }
}

function writeState(file: string, commits: Iterable<string>): void {
  mkdirSync(dirname(file), { recursive: true })
  const state: ScanState = { version: 1, commits: [...commits].sort() }
  writeFileSync(file, JSON.stringify(state) + '\n')
}

/** Scans a directory or repository (files, and history when asked) and returns the findings. */
export async function scanTarget(options: ScanOptions): Promise<ScanResult> {
  const stats = emptyStats()
  const maxFileSize = options.maxFileSize ?? 10 * 1024 * 1024
  let root: string
  let cloneDir: string | undefined
  let repository: string | undefined
  let history = options.history === true
  let files = true
  if (isGitUrl(options.target)) {
    cloneDir = mkdtempSync(join(tmpdir(), 'tessera-scan-'))
    root = join(cloneDir, 'repo.git')
    await cloneMirror(options.target, root)
    repository = redactGitUrl(options.target)
    history = true
    files = false
  } else {
    root = resolve(options.target)
    let st
    try {
      st = statSync(root)
    } catch {
      throw new TesseraError(
        'TSR_VALIDATION',
        `cannot scan ${options.target}: no such file or directory`,
      )
    }
    if (!st.isDirectory()) {
      throw new TesseraError('TSR_VALIDATION', `cannot scan ${options.target}: not a directory`)
    }
    if (await isGitRepository(root)) {
      repository = root
      if (await isBareRepository(root)) {
        history = true
        files = false
      }
    } else if (history) {
      throw new TesseraError(
        'TSR_VALIDATION',
        `--history: ${options.target} is not a git repository`,
      )
    }
  }
  const workers = options.workers ?? Math.min(availableParallelism(), 8)
  const pool = createScanPool(options.rules, options.key, workers)
  const findings: Finding[] = []
  const inFlight = new Set<Promise<void>>()
  const merge = (r: BatchResult) => {
    stats.files += r.files
    stats.bytes += r.bytes
    stats.skippedBinary += r.skippedBinary
    stats.suppressed += r.suppressed
    for (const f of r.findings) {
      if (options.baseline?.has(`${f.rule}:${f.fingerprint}`)) stats.baselined++
      else findings.push(f)
    }
    options.onProgress?.(stats, findings.length)
  }
  const submit = async (fileJobs: FileJob[], blocks: BlockJob[]) => {
    const p = pool.run(fileJobs, blocks).then(merge)
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p)).catch(() => {})
    // Back-pressure: at most two batches per worker queued.
    while (inFlight.size >= Math.max(2, workers * 2)) await Promise.race(inFlight)
  }
  let commitsScanned: string[] = []
  try {
    if (files) {
      let batch: FileJob[] = []
      let bytes = 0
      for (const f of listFiles(root, stats, maxFileSize)) {
        batch.push({ path: f.path, file: f.file })
        bytes += f.size
        if (batch.length >= batchFiles || bytes >= batchBytes) {
          await submit(batch, [])
          batch = []
          bytes = 0
        }
      }
      if (batch.length > 0) await submit(batch, [])
    }
    if (history) {
      const all = await allCommits(root)
      const seen = options.stateFile ? readState(options.stateFile) : new Set<string>()
      commitsScanned = all.filter((c) => !seen.has(c))
      let blocks: BlockJob[] = []
      let bytes = 0
      for await (const block of historyBlocks(root, commitsScanned, () => stats.commits++)) {
        blocks.push(block)
        bytes += block.text.length
        if (blocks.length >= 256 || bytes >= batchBytes) {
          await submit([], blocks)
          blocks = []
          bytes = 0
        }
      }
      if (blocks.length > 0) await submit([], blocks)
      await Promise.all(inFlight)
      if (options.stateFile) writeState(options.stateFile, [...seen, ...commitsScanned])
    }
    await Promise.all(inFlight)
  } finally {
    await pool.close()
    if (cloneDir) rmSync(cloneDir, { recursive: true, force: true })
  }
  findings.sort(
    (a, b) =>
      a.file.localeCompare(b.file) ||
      a.line - b.line ||
      a.column - b.column ||
      (a.commit ?? '').localeCompare(b.commit ?? ''),
  )
  return { findings, stats, ...(repository ? { repository } : {}), commitsScanned }
}

/** Reads a baseline file (written by `writeBaseline`) as a set of `rule:fingerprint`. */
export function readBaseline(file: string): Set<string> {
  let value: unknown
  try {
    value = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `baseline ${file} is unreadable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
  const v = value as { version?: unknown; findings?: unknown }
  if (v.version !== 1 || !Array.isArray(v.findings)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `baseline ${file}: expected {"version": 1, "findings": [...]}`,
    )
  }
  const set = new Set<string>()
  for (const f of v.findings as { rule?: unknown; fingerprint?: unknown }[]) {
    if (typeof f.rule === 'string' && typeof f.fingerprint === 'string') {
      set.add(`${f.rule}:${f.fingerprint}`)
    }
  }
  return set
}

/** Writes the findings as a baseline: rule, fingerprint and first location, never the secret. */
export function writeBaseline(file: string, findings: readonly Finding[]): void {
  const seen = new Map<string, { rule: string; fingerprint: string; file: string; line: number }>()
  for (const f of findings) {
    const k = `${f.rule}:${f.fingerprint}`
    if (!seen.has(k))
      seen.set(k, { rule: f.rule, fingerprint: f.fingerprint, file: f.file, line: f.line })
  }
  writeFileSync(file, JSON.stringify({ version: 1, findings: [...seen.values()] }, null, 2) + '\n')
}
