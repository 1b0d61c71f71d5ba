import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, openSync, readFileSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { TesseraError } from '../errors.js'
import type { KeyManagerConfig } from './key-manager.js'

/**
 * Where the CA's key-encryption key comes from:
 * 1. `TESSERA_KEK`: base64 of 32 random bytes (`openssl rand -base64 32`);
 * 2. a KEK file (`--kek-file`, `TESSERA_KEK_FILE`) holding the same base64 text;
 * 3. the embedded store in a data dir: `<data dir>/kek`, generated on first start (mode 0600) with
 *    a warning, since the key then sits beside the data it protects;
 * 4. the in-memory embedded store: no KEK, the `memory` key manager (keys die with the process).
 * A persistent PostgreSQL store without 1 or 2 is refused: CA keys would otherwise be unrecoverable
 * (memory) or kept beside nothing the operator controls.
 */
export interface KekSource {
  env?: Record<string, string | undefined>
  kekFile?: string
  store: { backend: 'pglite' | 'postgres'; dataDir?: string }
  /** Told once when a KEK file is generated or is readable by others. */
  warn?: (message: string) => void
  random?: (n: number) => Buffer
}

export const kekFileName = 'kek'

export function decodeKek(text: string, where: string): Buffer {
  const trimmed = text.trim()
  const kek = Buffer.from(trimmed, 'base64')
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || kek.length !== 32) {
    throw new TesseraError(
      'TSR_CONFIG',
      `${where} must be the base64 of exactly 32 random bytes (make one with \`openssl rand -base64 32\`)`,
    )
  }
  return kek
}

function readKekFile(path: string, warn: (m: string) => void): Buffer {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new TesseraError('TSR_CONFIG', `cannot read the KEK file ${path}`, { cause: err })
  }
  if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
    warn(`the KEK file ${path} is readable by other users; chmod 600 it`)
  }
  return decodeKek(text, `the KEK file ${path}`)
}

export function resolveKeyManagerConfig(source: KekSource): KeyManagerConfig & { origin: string } {
  const env = source.env ?? process.env
  const warn = source.warn ?? (() => {})
  const fromEnv = env.TESSERA_KEK
  if (fromEnv !== undefined && fromEnv !== '') {
    return { kind: 'disk', kek: decodeKek(fromEnv, 'TESSERA_KEK'), origin: 'TESSERA_KEK' }
  }
  const file = source.kekFile ?? (env.TESSERA_KEK_FILE || undefined)
  if (file !== undefined) {
    return { kind: 'disk', kek: readKekFile(file, warn), origin: file }
  }
  if (source.store.backend === 'postgres') {
    throw new TesseraError(
      'TSR_CONFIG',
      'a PostgreSQL store needs a key-encryption key for the CA keys: set TESSERA_KEK to the base64 of 32 random bytes (`openssl rand -base64 32`) or TESSERA_KEK_FILE to a file holding it',
    )
  }
  if (source.store.dataDir === undefined) return { kind: 'memory', origin: 'memory' }
  const path = join(source.store.dataDir, kekFileName)
  if (existsSync(path)) return { kind: 'disk', kek: readKekFile(path, warn), origin: path }
  const kek = (source.random ?? randomBytes)(32)
  let fd: number
  try {
    fd = openSync(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      return { kind: 'disk', kek: readKekFile(path, warn), origin: path }
    }
    throw new TesseraError('TSR_CONFIG', `cannot create the KEK file ${path}`, { cause: err })
  }
  try {
    writeSync(fd, kek.toString('base64') + '\n')
  } finally {
    closeSync(fd)
  }
  warn(
    `generated a key-encryption key for the CA keys at ${path}; it sits beside the data it protects: back it up and, in production, set TESSERA_KEK instead`,
  )
  return { kind: 'disk', kek, origin: path }
}
