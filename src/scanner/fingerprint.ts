import { createHmac, randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { TesseraError } from '../errors.js'

/** Length in bytes of a fingerprint key. */
export const keyBytes = 32

/** The keyed fingerprint of a secret: HMAC-SHA256 under the installation's key, in hex. */
export function fingerprintSecret(key: Uint8Array, secret: string): string {
  return createHmac('sha256', key).update(secret, 'utf8').digest('hex')
}

/**
 * A redacted preview: the first and last 4 characters at most, fewer for short secrets, so a
 * preview never shows more than 40% of the secret and nothing of one under 8 characters.
 */
export function redactedPreview(secret: string): string {
  const n = [...secret]
  const k = n.length >= 20 ? 4 : n.length >= 12 ? 2 : n.length >= 8 ? 1 : 0
  if (k === 0) return '…'
  return `${n.slice(0, k).join('')}…${n.slice(-k).join('')}`
}

/** Parses a key given as 64 hex digits or base64 of 32 bytes (`TESSERA_SCANNER_KEY`). */
export function parseKey(text: string, source: string): Buffer {
  const t = text.trim()
  const key = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64')
  if (key.length !== keyBytes) {
    throw new TesseraError(
      'TSR_CONFIG',
      `${source}: a scanner key is 32 bytes, as 64 hex digits or base64`,
    )
  }
  return key
}

/**
 * The key in a key file, created (mode 0600) with fresh random bytes when the file does not
 * exist yet. For scans that have no store.
 */
export function loadOrCreateKeyFile(
  file: string,
  random: (n: number) => Buffer = randomBytes,
): Buffer {
  try {
    return parseKey(readFileSync(file, 'utf8'), file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  mkdirSync(dirname(file), { recursive: true })
  const key = random(keyBytes)
  try {
    writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' })
    chmodSync(file, 0o600)
    return key
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      return parseKey(readFileSync(file, 'utf8'), file)
    }
    throw err
  }
}
