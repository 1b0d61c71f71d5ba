import { execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

export const testKey = Buffer.alloc(32, 7)
export const testKeyHex = testKey.toString('hex')

export function tempDir(prefix = 'tessera-scan-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** A git repository built by script: real `git`, fixed authors and dates. */
export function createRepo() {
  const dir = tempDir('tessera-repo-')
  const run = (args: string[], env: Record<string, string> = {}) =>
    execFileSync('git', args, {
      cwd: dir,
      env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', ...env },
      encoding: 'utf8',
    })
  run(['init', '-q', '-b', 'main'])
  return {
    dir,
    git: run,
    write(path: string, text: string) {
      mkdirSync(dirname(join(dir, path)), { recursive: true })
      writeFileSync(join(dir, path), text)
    },
    commit(message: string, author: { name: string; email: string; date: string }): string {
      run(['add', '-A'])
      run(['commit', '-q', '-m', message], {
        GIT_AUTHOR_NAME: author.name,
        GIT_AUTHOR_EMAIL: author.email,
        GIT_AUTHOR_DATE: author.date,
        GIT_COMMITTER_NAME: author.name,
        GIT_COMMITTER_EMAIL: author.email,
        GIT_COMMITTER_DATE: author.date,
      })
      return run(['rev-parse', 'HEAD']).trim()
    },
  }
}
