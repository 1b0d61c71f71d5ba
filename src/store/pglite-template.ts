import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  openAsBlob,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import type { PGlite } from '@electric-sql/pglite'
import { migrationSignature } from './migrate.js'

/**
 * A fresh embedded store costs an initdb inside WebAssembly (3–5 s on a small machine); loading a
 * dump of an already initialised and migrated cluster takes well under a second. The first fresh
 * store a user opens writes such a dump to a cache directory; later fresh stores (`npm start` on a
 * new data dir, every in-memory test store) start from it. The file name carries the PGlite version
 * and a hash of the migrations, so a new schema or engine never loads a stale template.
 *
 * The cache is `$TESSERA_CACHE_DIR`, else `$XDG_CACHE_HOME/tessera`, else `~/.cache/tessera`;
 * `TESSERA_CACHE_DIR=off` disables it. Failing to read or write it only costs the initdb.
 */
export function templateCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env.TESSERA_CACHE_DIR
  if (explicit === 'off' || explicit === '') return undefined
  if (explicit !== undefined) return explicit
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache')
  return join(base, 'tessera')
}

let cachedKey: string | undefined

/** The template's file name: engine version plus migration hash. */
export function templateFileName(): string {
  if (cachedKey === undefined) {
    const digest = createHash('sha256')
      .update(pgliteVersion())
      .update('\0')
      .update(migrationSignature())
      .digest('hex')
      .slice(0, 16)
    cachedKey = `pglite-template-${pgliteVersion()}-${digest}.tar`
  }
  return cachedKey
}

function pgliteVersion(): string {
  try {
    const require = createRequire(import.meta.url)
    let dir = dirname(require.resolve('@electric-sql/pglite'))
    for (let i = 0; i < 5; i++) {
      const pkg = join(dir, 'package.json')
      if (existsSync(pkg)) {
        const json = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string }
        if (json.name === '@electric-sql/pglite' && json.version) return json.version
      }
      dir = dirname(dir)
    }
  } catch {
    // fall through
  }
  return 'unknown'
}

/** The cached template as a Blob, or undefined when there is none (or no cache). */
export async function loadTemplate(): Promise<Blob | undefined> {
  const dir = templateCacheDir()
  if (dir === undefined) return undefined
  const file = join(dir, templateFileName())
  try {
    return existsSync(file) ? await openAsBlob(file) : undefined
  } catch {
    return undefined
  }
}

/** Forgets a template that failed to load. */
export function discardTemplate(): void {
  const dir = templateCacheDir()
  if (dir !== undefined) rmSync(join(dir, templateFileName()), { force: true })
}

/**
 * Dumps a freshly initialised and migrated cluster as the template. Written to a temporary name and
 * renamed, so concurrent processes never see half a file; older templates are removed.
 */
export async function saveTemplate(pglite: PGlite): Promise<void> {
  const dir = templateCacheDir()
  if (dir === undefined) return
  try {
    const name = templateFileName()
    const dump = await pglite.dumpDataDir('none')
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const tmp = join(dir, `${name}.${process.pid}.${Date.now()}.tmp`)
    writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()), { mode: 0o600 })
    renameSync(tmp, join(dir, name))
    for (const other of readdirSync(dir)) {
      if (other.startsWith('pglite-template-') && other !== name && !other.endsWith('.tmp')) {
        rmSync(join(dir, other), { force: true })
      }
    }
  } catch {
    // A read-only home or a full disk only means the next fresh store runs initdb again.
  }
}
