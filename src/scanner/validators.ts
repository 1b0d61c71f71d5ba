import { crc32 } from 'node:zlib'
import type { ValidatorName } from './types.js'

const base62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/** CRC32 as 6 base62 digits, left-padded with `0`: the checksum of GitHub and npm tokens. */
export function base62Crc32(text: string): string {
  let n = crc32(text)
  let out = ''
  do {
    out = base62[n % 62]! + out
    n = Math.floor(n / 62)
  } while (n > 0)
  return out.padStart(6, '0')
}

/**
 * GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) and npm (`npm_`) tokens end with the CRC32 of
 * the random part in 6 base62 digits (github.blog, 2021-04-05 and 2021-09-23).
 */
export function validPrefixedCrc32(token: string): boolean {
  const at = token.indexOf('_')
  if (at < 0) return false
  const rest = token.slice(at + 1)
  if (rest.length < 7) return false
  return base62Crc32(rest.slice(0, -6)) === rest.slice(-6)
}

function decodeJsonPart(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown
  } catch {
    return undefined
  }
}

/** A JWT: a JSON header with an `alg`, and a JSON object payload. */
export function validJwt(token: string): boolean {
  const [h, p] = token.split('.')
  if (h === undefined || p === undefined) return false
  const header = decodeJsonPart(h)
  const payload = decodeJsonPart(p)
  return (
    typeof header === 'object' &&
    header !== null &&
    typeof (header as { alg?: unknown }).alg === 'string' &&
    typeof payload === 'object' &&
    payload !== null
  )
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(text: string): number {
  if (text.length === 0) return 0
  const counts = new Map<string, number>()
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1)
  let h = 0
  for (const c of counts.values()) {
    const p = c / text.length
    h -= p * Math.log2(p)
  }
  return h
}

/** The key material of a PEM-like body: whitespace, literal `\n` and header lines removed. */
export function normalisePemBody(body: string): string {
  return body
    .replace(/\\n/g, '\n')
    .split(/\r?\n/)
    .filter((l) => !l.includes(':') && !/^\s*=/.test(l))
    .join('')
    .replace(/[\s\\]/g, '')
}

function validPemBody(body: string): boolean {
  const b = normalisePemBody(body)
  if (b.length < 40 || !/^[A-Za-z0-9+/]+=*$/.test(b)) return false
  return shannonEntropy(b) >= 4.5
}

function validBase64Key(key: string): boolean {
  return Buffer.from(key, 'base64').length === 64 && shannonEntropy(key) >= 4.5
}

const fileLike =
  /\.(?:json|ya?ml|pem|key|crt|cer|txt|env|p12|pfx|jks|properties|conf|ini|xml|toml)$/i

/**
 * A generic assignment's value is a secret only when it looks like one: not a URL, path, file
 * name, environment variable name, dotted identifier or plain word.
 */
export function plausibleGenericValue(value: string): boolean {
  if (value.includes('://')) return false
  if (/^(?:\/|\.\.?\/|~\/|[A-Za-z]:\\)/.test(value)) return false
  if (fileLike.test(value)) return false
  if (/^[A-Z][A-Z0-9_]*$/.test(value)) return false
  if (/^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)+(?:\(\))?[,;]?$/.test(value))
    return false
  if (/^[a-z]+(?:[-_][a-z]+)*$/i.test(value)) return false
  if (/^[a-z]+(?:[A-Z][a-z]+)+$/.test(value)) return false
  if (/^(?:true|false|null|none|nil|undefined)$/i.test(value)) return false
  // Template and interpolation syntax of many languages.
  if (/^(?:\{\{.*\}\}|%\(.*\)s|#\{.*\}|@.+@|%[A-Z_]+%)$/.test(value)) return false
  const hasLetter = /[A-Za-z]/.test(value)
  const hasOther = /[^A-Za-z]/.test(value)
  return hasLetter && hasOther
}

export function runValidator(name: ValidatorName, secret: string): boolean {
  switch (name) {
    case 'github-crc32':
    case 'npm-crc32':
      return validPrefixedCrc32(secret)
    case 'jwt':
      return validJwt(secret)
    case 'base64-key':
      return validBase64Key(secret)
    case 'pem-body':
      return validPemBody(secret)
    case 'generic-value':
      return plausibleGenericValue(secret)
  }
}
