import { readFile } from 'node:fs/promises'
import { join, normalize, sep } from 'node:path'

/**
 * GitHub CODEOWNERS: one rule per line, `PATTERN OWNER…`, `#` comments; the LAST matching rule
 * wins. Patterns follow gitignore: a leading `/` or an inner `/` anchors to the repository root,
 * otherwise the pattern matches at any depth; a trailing `/` means a directory; `*` stays within a
 * path segment, `**` crosses segments, `?` is one character; a directory matches what is under it.
 */
export interface CodeownersRule {
  pattern: string
  owners: string[]
  line: number
  regex: RegExp
}

export function parseCodeowners(text: string): CodeownersRule[] {
  const rules: CodeownersRule[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim()
    if (line === '') return
    const [pattern, ...owners] = line.split(/\s+/)
    if (!pattern || pattern.startsWith('!') || pattern.includes('[')) return // unsupported by GitHub too
    rules.push({ pattern, owners, line: i + 1, regex: patternRegex(pattern) })
  })
  return rules
}

function patternRegex(pattern: string): RegExp {
  let p = pattern
  const dirOnly = p.endsWith('/')
  if (dirOnly) p = p.slice(0, -1)
  const anchored = p.startsWith('/') || p.includes('/')
  if (p.startsWith('/')) p = p.slice(1)
  let re = ''
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!
    if (c === '*') {
      if (p[i + 1] === '*') {
        // `**/` is zero or more directories; a trailing or inner `**` anything.
        if (p[i + 2] === '/') {
          re += '(?:.*/)?'
          i += 2
        } else {
          re += '.*'
          i += 1
        }
      } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&')
  }
  const prefix = anchored ? '^' : '^(?:.*/)?'
  const suffix = dirOnly ? '/.*$' : '(?:/.*)?$'
  return new RegExp(prefix + re + suffix)
}

/** The owners of a file path (relative to the repository root), from the last matching rule. */
export function codeownersFor(
  rules: readonly CodeownersRule[],
  file: string,
): { owners: string[]; rule: CodeownersRule } | undefined {
  const path = file.replace(/^\.?\//, '')
  for (let i = rules.length - 1; i >= 0; i--) {
    const rule = rules[i]!
    if (rule.regex.test(path)) return { owners: rule.owners, rule }
  }
  return undefined
}

/** Where CODEOWNERS content comes from for a repository (as credential locations name it). */
export interface CodeownersSource {
  get(repository: string): Promise<string | undefined>
}

/** GitHub looks in these places, in this order. */
export const codeownersPaths = ['.github/CODEOWNERS', 'CODEOWNERS', 'docs/CODEOWNERS']

/**
 * Reads CODEOWNERS from checkouts under `dir`: the repository `github.com/acme/api` is looked for
 * at `dir/github.com/acme/api`, then `dir/acme/api`, then `dir/api`. Repository names that would
 * leave `dir` are refused.
 */
export function directoryCodeowners(dir: string): CodeownersSource {
  const root = normalize(dir)
  return {
    async get(repository) {
      const parts = repository
        .replace(/^[a-z]+:\/\//i, '')
        .split('/')
        .filter(Boolean)
      if (parts.some((p) => p === '..' || p === '.')) return undefined
      const candidates = [parts, parts.slice(1), parts.slice(-1)].filter((c) => c.length > 0)
      for (const c of candidates) {
        for (const file of codeownersPaths) {
          const full = normalize(join(root, ...c, file))
          if (!full.startsWith(root.endsWith(sep) ? root : root + sep)) continue
          try {
            return await readFile(full, 'utf8')
          } catch {
            // not there; try the next place
          }
        }
      }
      return undefined
    },
  }
}
