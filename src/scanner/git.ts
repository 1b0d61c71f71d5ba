import { execFile, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { TesseraError } from '../errors.js'
import type { BlockJob } from './content.js'

const execFileAsync = promisify(execFile)

/** Environment for every git call: no prompts, no user or system config surprises in output. */
const gitEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' }

async function git(cwd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('git', args, {
      cwd,
      env: gitEnv,
      maxBuffer: 512 * 1024 * 1024,
    })
    return stdout
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new TesseraError(
      'TSR_SCANNER_GIT',
      `git ${args[0]} failed in ${cwd}: ${(e.stderr ?? e.message).trim().split('\n')[0]}`,
    )
  }
}

/** True when `dir` is a git repository (work tree or bare). */
export async function isGitRepository(dir: string): Promise<boolean> {
  try {
    await execFileAsync('git', ['rev-parse', '--git-dir'], { cwd: dir, env: gitEnv })
    return true
  } catch {
    return false
  }
}

export async function isBareRepository(dir: string): Promise<boolean> {
  return (await git(dir, ['rev-parse', '--is-bare-repository'])).trim() === 'true'
}

/** Every commit reachable from any ref. */
export async function allCommits(dir: string): Promise<string[]> {
  const out = await git(dir, ['rev-list', '--all'])
  return out.split('\n').filter((l) => l.length > 0)
}

/** A URL git can clone, rather than a local path. */
export function isGitUrl(target: string): boolean {
  return /^(?:https?|ssh|git|file):\/\//i.test(target) || /^[\w.-]+@[\w.-]+:[^/\\]/.test(target)
}

/** The URL without user info, for messages and findings. */
export function redactGitUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1')
}

/** Clones `url` as a mirror (every ref, no work tree) into `dir`. */
export async function cloneMirror(url: string, dir: string): Promise<void> {
  try {
    await execFileAsync('git', ['clone', '--mirror', '--quiet', url, dir], { env: gitEnv })
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    // The URL may carry a token: never echo it.
    throw new TesseraError(
      'TSR_SCANNER_GIT',
      `git clone of ${redactGitUrl(url)} failed: ${redactGitUrl((e.stderr ?? e.message).trim().split('\n').pop() ?? '')}`,
    )
  }
}

/** Undoes git's C-style quoting of a path (`"a\\tb\\303\\251"`), octal escapes as UTF-8 bytes. */
export function unquoteGitPath(path: string): string {
  if (!(path.startsWith('"') && path.endsWith('"') && path.length >= 2)) return path
  const bytes: number[] = []
  const body = path.slice(1, -1)
  const simple: Record<string, number> = {
    n: 10,
    t: 9,
    r: 13,
    a: 7,
    b: 8,
    f: 12,
    v: 11,
    '"': 34,
    '\\': 92,
  }
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!
    if (c !== '\\') {
      bytes.push(...Buffer.from(c))
      continue
    }
    const n = body[i + 1] ?? ''
    if (/[0-7]/.test(n)) {
      bytes.push(parseInt(body.slice(i + 1, i + 4), 8) & 0xff)
      i += 3
    } else {
      bytes.push(simple[n] ?? n.charCodeAt(0))
      i += 1
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

const marker = '\u0001tessera-commit\u0002'

/**
 * Streams the added lines of `commits` (from `git log -p`), one block per commit and file, with
 * the real line numbers, the commit, its author and date. Deleted lines are ignored: a secret is
 * reported at the commit that added it.
 *
 * Merge commits come as combined diffs (`--cc`): only what the merge itself introduced, the lines
 * that are in none of its parents (a conflict resolution, an "evil merge"), counts as added there.
 * Lines a merge brings in from a parent were already seen in the commit that wrote them.
 */
export async function* historyBlocks(
  dir: string,
  commits: readonly string[],
  onCommit?: () => void,
): AsyncGenerator<BlockJob> {
  if (commits.length === 0) return
  const child = spawn(
    'git',
    [
      '-c',
      'core.quotePath=false',
      'log',
      '-p',
      '-U0',
      '--no-walk=unsorted',
      '--stdin',
      '--no-color',
      '--no-ext-diff',
      '--no-textconv',
      '--no-renames',
      '--cc',
      `--format=%x01tessera-commit%x02%H%x00%an%x00%ae%x00%aI`,
    ],
    { cwd: dir, env: gitEnv, stdio: ['pipe', 'pipe', 'pipe'] },
  )
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString()
  })
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => resolve(code ?? 1))
  })
  child.stdin.on('error', () => {})
  child.stdin.end(commits.join('\n') + '\n')

  let commit = ''
  let author = ''
  let email = ''
  let date = ''
  let file: string | undefined
  let lines: string[] = []
  let numbers: number[] = []
  let next = 0
  let inHeader = false
  /** Columns of the line prefix: 1 for a plain diff, one per parent for a combined one. */
  let columns = 1
  const flush = (): BlockJob | undefined => {
    if (file === undefined || lines.length === 0) {
      lines = []
      numbers = []
      return undefined
    }
    const block: BlockJob = {
      text: lines.join('\n'),
      source: { file, lines: numbers, commit, author, email, date },
    }
    lines = []
    numbers = []
    return block
  }
  const rl = createInterface({ input: child.stdout, crlfDelay: Infinity })
  for await (const line of rl) {
    if (line.startsWith(marker)) {
      const b = flush()
      if (b) yield b
      file = undefined
      ;[commit = '', author = '', email = '', date = ''] = line.slice(marker.length).split('\0')
      onCommit?.()
    } else if (line.startsWith('diff --git ') || line.startsWith('diff --cc ')) {
      const b = flush()
      if (b) yield b
      file = undefined
      inHeader = true
    } else if (inHeader && line.startsWith('+++ ')) {
      // git ends a name that has a space with a tab, and C-quotes names with odd characters.
      const target = unquoteGitPath(line.slice(4).replace(/\t$/, ''))
      file = target === '/dev/null' ? undefined : target.replace(/^b\//, '')
    } else if (line.startsWith('@@')) {
      // `@@ -a +b @@`, or `@@@ -a -c +b @@@` for a merge of two parents (one more @ per parent).
      const m = /^(@{2,}) (?:-\d+(?:,\d+)? )+\+(\d+)(?:,\d+)? @{2,}/.exec(line)
      columns = m ? m[1]!.length - 1 : 1
      next = m ? Number(m[2]) : 0
      inHeader = false
    } else if (!inHeader && file !== undefined && columns === 1 && line.startsWith('+')) {
      lines.push(line.slice(1))
      numbers.push(next++)
    } else if (!inHeader && file !== undefined && columns > 1) {
      const prefix = line.slice(0, columns)
      if (prefix.includes('-')) continue // not in the merge result
      if (/^\++$/.test(prefix)) {
        // In none of the parents: the merge wrote it.
        lines.push(line.slice(columns))
        numbers.push(next)
      }
      next++
    }
  }
  const b = flush()
  if (b) yield b
  const code = await exited
  if (code !== 0) {
    throw new TesseraError(
      'TSR_SCANNER_GIT',
      `git log failed in ${dir}: ${stderr.trim().split('\n')[0] ?? `exit ${code}`}`,
    )
  }
}
