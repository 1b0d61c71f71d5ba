import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { FileReader } from './connector.js'
import { inputError } from './parse/input-error.js'

/** Files from the local disk. Errors name the file and the reason (`ENOENT`), never content. */
export const nodeFileReader: FileReader = {
  async readFile(path) {
    try {
      return await readFile(path)
    } catch (err) {
      throw inputError(
        path,
        `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        {},
        err,
      )
    }
  },
  async listFiles(path) {
    let st
    try {
      st = await stat(path)
    } catch (err) {
      throw inputError(
        path,
        `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        {},
        err,
      )
    }
    if (st.isFile()) return [path]
    const out: string[] = []
    const walk = async (dir: string, depth: number) => {
      if (depth > 16) return
      const entries = await readdir(dir, { withFileTypes: true })
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      for (const e of entries) {
        const p = join(dir, e.name)
        if (e.isDirectory()) await walk(p, depth + 1)
        else if (e.isFile()) out.push(p)
      }
    }
    await walk(path, 0)
    return out
  },
}
