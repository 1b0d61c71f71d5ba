/**
 * `.tesseraignore`: gitignore-like patterns, one a line. `#` starts a comment, `!` re-includes,
 * a trailing `/` matches directories only, a pattern with a `/` elsewhere is anchored at the scan
 * root, others match a name at any depth; `*`, `?`, `[…]` and `**` as in gitignore. The last
 * matching pattern wins.
 */
export interface IgnoreMatcher {
  ignores(relPath: string, isDir: boolean): boolean
}

interface Pattern {
  re: RegExp
  negate: boolean
  dirOnly: boolean
}

function globToRegex(glob: string): string {
  let out = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slashAfter = glob[i + 2] === '/'
        out += slashAfter ? '(?:.*/)?' : '.*'
        i += slashAfter ? 2 : 1
      } else {
        out += '[^/]*'
      }
    } else if (c === '?') {
      out += '[^/]'
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 1)
      if (end < 0) {
        out += '\\['
      } else {
        let cls = glob.slice(i + 1, end).replace(/\\/g, '\\\\')
        if (cls.startsWith('!')) cls = '^' + cls.slice(1)
        out += `[${cls}]`
        i = end
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      out += glob[i + 1]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
      i++
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    }
  }
  return out
}

export function parseIgnore(text: string): IgnoreMatcher {
  const patterns: Pattern[] = []
  for (const rawLine of text.split(/\r?\n/)) {
    let line = rawLine.replace(/(?<!\\)\s+$/, '')
    if (line === '' || line.startsWith('#')) continue
    let negate = false
    if (line.startsWith('!')) {
      negate = true
      line = line.slice(1)
    }
    let dirOnly = false
    if (line.endsWith('/')) {
      dirOnly = true
      line = line.slice(0, -1)
    }
    const anchored = line.includes('/')
    if (line.startsWith('/')) line = line.slice(1)
    if (line === '') continue
    const body = globToRegex(line)
    patterns.push({
      re: new RegExp(anchored ? `^${body}$` : `(?:^|/)${body}$`),
      negate,
      dirOnly,
    })
  }
  return {
    ignores(relPath, isDir) {
      let ignored = false
      for (const p of patterns) {
        if (p.dirOnly && !isDir) continue
        if (p.re.test(relPath)) ignored = !p.negate
      }
      return ignored
    },
  }
}

export const noIgnore: IgnoreMatcher = { ignores: () => false }
