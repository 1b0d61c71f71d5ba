import { createReadStream } from 'node:fs'
import { isUtf8 } from 'node:buffer'
import { Compile, type Validator } from 'typebox/compile'
import type { TLocalizedValidationError } from 'typebox/error'
import { TesseraError } from '../errors.js'
import type { Observation } from './observation.js'
import {
  commitPattern,
  fingerprintPattern,
  observationTypes,
  observationVariantSchemas,
  resourceTypePattern,
  sourcePattern,
  type ObservationType,
} from './observation-schema.js'

/**
 * Validation of observations from import files and the API: the TypeBox schema (compiled once),
 * then the checks a JSON Schema cannot express. Reasons are short, name the field, and never echo
 * a field's value (an import line may hold a secret that must not reach a log).
 */

export type ParseObservationResult =
  { ok: true; observation: Observation } | { ok: false; reason: string }

/** One line of a JSON Lines input: an observation, or why the line was rejected. */
export type JsonLinesEntry =
  { line: number; observation: Observation } | { line: number; error: string }

export interface JsonLinesOptions {
  /** Longest accepted line in bytes, without its line break (default 1 MiB). */
  maxLineBytes?: number
}

export const defaultMaxLineBytes = 1024 * 1024

const validators = Object.fromEntries(
  observationTypes.map((type) => [type, Compile(observationVariantSchemas[type])]),
) as Record<ObservationType, Validator>

const minYear = 1970
const maxYear = 9999
const maxAttributeDepth = 32
const hourMs = 3_600_000

const dateFields: Record<ObservationType, readonly string[]> = {
  identity: ['observedAt', 'createdAt', 'lastUsedAt'],
  credential: ['observedAt', 'createdAt', 'expiresAt', 'lastRotatedAt', 'lastUsedAt'],
  location: ['observedAt'],
  owner: ['observedAt'],
  resource: ['observedAt'],
  grant: ['observedAt'],
  usage: ['observedAt', 'hour'],
  edge: ['observedAt'],
}

/**
 * A redacted preview: up to 4 visible characters, a mask (`…`, `*`, `•` or two or more dots), up
 * to 4 visible characters. `AKIA…X7Q2`, `ghp_****`, `…Q2x9` pass; a raw key does not.
 */
const previewPattern = /^[^…*•]{0,4}?(?:…|\*|•|\.{2,})+[^…*•]{0,4}$/u

/**
 * Validates one observation (already parsed from JSON) and returns a normalised copy: every date
 * as `toISOString()` (UTC, milliseconds), the usage `hour` truncated to the hour, the fingerprint
 * in lower case. The input is not modified.
 */
export function parseObservation(value: unknown): ParseObservationResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(`expected a JSON object, got ${describeJsonType(value)}`)
  }
  const record = value as Record<string, unknown>
  const type = record.type
  if (type === undefined) return fail('type: required')
  if (typeof type !== 'string') return fail('type: must be a string')
  if (!Object.hasOwn(validators, type)) {
    return fail(`unknown type ${quote(type)} (expected one of ${observationTypes.join(', ')})`)
  }
  const kind = type as ObservationType
  const validator = validators[kind]
  if (!validator.Check(value)) return fail(describeSchemaError(validator.Errors(value)))

  const out: Record<string, unknown> = { ...record }
  for (const field of dateFields[kind]) {
    const raw = out[field]
    if (raw === undefined) continue
    const ms = Date.parse(raw as string)
    if (Number.isNaN(ms)) return fail(`${field}: not a valid date`)
    const date = new Date(field === 'hour' ? Math.floor(ms / hourMs) * hourMs : ms)
    const year = date.getUTCFullYear()
    if (year < minYear || year > maxYear) {
      return fail(`${field}: year must be between ${minYear} and ${maxYear}`)
    }
    out[field] = date.toISOString()
  }
  if (kind === 'credential') {
    if (typeof out.preview === 'string' && !previewPattern.test(out.preview)) {
      return fail(
        'preview: must be redacted, at most the first and last 4 characters around a mask (e.g. AKIA…X7Q2)',
      )
    }
    if (typeof out.fingerprint === 'string') out.fingerprint = out.fingerprint.toLowerCase()
  }
  const nul = findNulOrDepth(out, 0)
  if (nul) return fail(nul)
  return { ok: true, observation: out as unknown as Observation }
}

/**
 * Streams JSON Lines into observations, one entry per non-blank line with its 1-based number.
 * Accepts a whole string or chunks of text or bytes split anywhere (even inside a UTF-8 sequence).
 * Handles LF and CRLF, a UTF-8 BOM on line 1 and a last line without a line break. A line longer
 * than `maxLineBytes` is reported and skipped without being held in memory. Never throws on bad
 * input: every problem becomes an `{ line, error }` entry and the following lines still come.
 */
export async function* parseJsonLines(
  input: AsyncIterable<string | Buffer> | Iterable<string | Buffer> | string,
  options: JsonLinesOptions = {},
): AsyncGenerator<JsonLinesEntry> {
  const maxLineBytes = options.maxLineBytes ?? defaultMaxLineBytes
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
    throw new TesseraError('TSR_VALIDATION', 'maxLineBytes must be a positive integer')
  }
  const source = typeof input === 'string' ? [input] : input
  let line = 0
  // The current, unfinished line: pieces of earlier chunks, or nothing once it is known too long.
  let pending: Buffer[] = []
  let pendingBytes = 0
  let oversized = false

  for await (const chunk of source) {
    const buf = toBuffer(chunk)
    let start = 0
    while (start < buf.length) {
      const newline = buf.indexOf(0x0a, start)
      const end = newline === -1 ? buf.length : newline
      if (!oversized) {
        pendingBytes += end - start
        // One extra byte may be the `\r` of a CRLF, which does not count.
        if (pendingBytes > maxLineBytes + 1) {
          oversized = true
          pending = []
        } else {
          pending.push(buf.subarray(start, end))
        }
      }
      if (newline === -1) break
      line++
      const entry = finishLine(line, pending, oversized, maxLineBytes)
      if (entry) yield entry
      pending = []
      pendingBytes = 0
      oversized = false
      start = newline + 1
    }
  }
  if (oversized || pendingBytes > 0) {
    line++
    const entry = finishLine(line, pending, oversized, maxLineBytes)
    if (entry) yield entry
  }
}

/** A file streamed through `parseJsonLines`, with the bytes read so far for a progress bar. */
export interface JsonLinesFile {
  entries: AsyncGenerator<JsonLinesEntry>
  /** Bytes of the file consumed so far (compare with its size from `fs.stat`). */
  bytesRead(): number
}

/**
 * Streams a JSON Lines file. Read progress is available from `bytesRead()` at any time, and
 * `onBytes(total)` is called after each chunk read. A file that cannot be read makes iteration
 * throw `TesseraError('TSR_IMPORT_FILE')`.
 */
export function readJsonLinesFile(
  path: string,
  options: JsonLinesOptions & { onBytes?: (bytesRead: number) => void } = {},
): JsonLinesFile {
  let bytesRead = 0
  async function* chunks(): AsyncGenerator<Buffer> {
    const stream = createReadStream(path, { highWaterMark: 256 * 1024 })
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        bytesRead += chunk.length
        options.onBytes?.(bytesRead)
        yield chunk
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'read error'
      throw new TesseraError('TSR_IMPORT_FILE', `cannot read ${path}: ${code}`, { cause: err })
    } finally {
      stream.destroy()
    }
  }
  return { entries: parseJsonLines(chunks(), options), bytesRead: () => bytesRead }
}

function finishLine(
  line: number,
  pieces: Buffer[],
  oversized: boolean,
  maxLineBytes: number,
): JsonLinesEntry | undefined {
  if (oversized) return { line, error: `line longer than ${maxLineBytes} bytes` }
  let bytes = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces)
  if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1)
  if (line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    bytes = bytes.subarray(3)
  }
  if (bytes.length > maxLineBytes) return { line, error: `line longer than ${maxLineBytes} bytes` }
  if (!isUtf8(bytes)) return { line, error: 'invalid UTF-8' }
  const text = bytes.toString('utf8')
  if (text.trim() === '') return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return { line, error: `invalid JSON: ${describeJsonSyntaxError(err)}` }
  }
  const result = parseObservation(value)
  return result.ok ? { line, observation: result.observation } : { line, error: result.reason }
}

function toBuffer(chunk: string | Buffer | Uint8Array): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8')
  if (Buffer.isBuffer(chunk)) return chunk
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
}

/**
 * V8's JSON.parse messages quote the offending input (`"sk_live_ab"... is not valid JSON`), which
 * may be a secret. Keep the kind of error and its column only.
 */
function describeJsonSyntaxError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const position = /at position (\d+)/.exec(message)
  let head = message
    .replace(/\s*(?:in JSON )?at position \d+[\s\S]*$/, '')
    .replace(/,?\s*"[\s\S]*$/, '')
    .trim()
  if (head === '') head = 'not valid JSON'
  head = head.charAt(0).toLowerCase() + head.slice(1)
  return position ? `${head} at column ${Number(position[1]) + 1}` : head
}

function describeJsonType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return `a ${typeof value}`
}

const typeNames: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  object: 'an object',
  array: 'an array',
  boolean: 'a boolean',
}

const patternHints: Record<string, string> = {
  [sourcePattern]: 'must start with a letter or digit and use only letters, digits and . _ : -',
  [fingerprintPattern]: 'must be hmac-sha256:<hex> or 32..128 hex digits',
  [commitPattern]: 'must be a hex commit id of 7..64 digits',
  [resourceTypePattern]: 'must be lower-case letters, digits and . _ : -',
}

const formatHints: Record<string, string> = {
  'date-time': 'must be an RFC 3339 date-time such as 2026-11-20T12:00:00Z',
  email: 'must be an e-mail address',
}

/** The first meaningful schema error as `field: problem`. */
function describeSchemaError(errors: TLocalizedValidationError[]): string {
  // `additionalProperties: false` reports a `boolean` error per extra key and one summary error.
  const error = errors.find((e) => e.keyword !== 'boolean') ?? errors[0]
  if (!error) return 'invalid observation'
  const at = fieldPath(error.instancePath)
  const prefix = at === '' ? '' : `${at}: `
  switch (error.keyword) {
    case 'required': {
      const names = error.params.requiredProperties.map((p) => (at === '' ? p : `${at}.${p}`))
      return `${names.join(', ')}: required`
    }
    case 'additionalProperties': {
      const extra = error.params.additionalProperties.map(quote).join(', ')
      const hint = at === '' ? ' (put source-specific data in attributes)' : ''
      return `${prefix}unknown field ${extra}${hint}`
    }
    case 'type': {
      const types = ([] as string[]).concat(error.params.type)
      return `${prefix}must be ${types.map((t) => typeNames[t] ?? t).join(' or ')}`
    }
    case 'enum':
      return `${prefix}must be one of ${error.params.allowedValues.map(String).join(', ')}`
    case 'const':
      return `${prefix}must be ${JSON.stringify(error.params.allowedValue)}`
    case 'format':
      return `${prefix}${formatHints[error.params.format] ?? `must be a ${error.params.format}`}`
    case 'pattern':
      return `${prefix}${patternHints[String(error.params.pattern)] ?? `must match ${String(error.params.pattern)}`}`
    case 'minLength':
      return error.params.limit === 1
        ? `${prefix}must not be empty`
        : `${prefix}must be at least ${error.params.limit} characters`
    case 'maxLength':
      return `${prefix}must be at most ${error.params.limit} characters`
    case 'minimum':
      return `${prefix}must be >= ${error.params.limit}`
    case 'maximum':
      return `${prefix}must be <= ${error.params.limit}`
    case 'minItems':
      return `${prefix}must have at least ${error.params.limit} item${error.params.limit === 1 ? '' : 's'}`
    case 'maxItems':
      return `${prefix}must have at most ${error.params.limit} items`
    case 'maxProperties':
      return `${prefix}must have at most ${error.params.limit} keys`
    default:
      return `${prefix}${error.message}`
  }
}

/** JSON Pointer `/from/ref` → `from.ref`, `/actions/2` → `actions[2]`. */
function fieldPath(pointer: string): string {
  if (pointer === '') return ''
  let out = ''
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    if (/^\d+$/.test(part)) out += `[${part}]`
    else out += out === '' ? clip(part) : `.${clip(part)}`
  }
  return out
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000, and deeply nested attributes are a parser-bomb
 * risk downstream; reject both here instead of failing later inside a batch insert.
 */
function findNulOrDepth(value: unknown, depth: number, path = ''): string | undefined {
  if (typeof value === 'string') {
    return value.includes('\u0000') ? `${path || 'value'}: must not contain U+0000` : undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  if (depth > maxAttributeDepth) return `attributes: nested deeper than ${maxAttributeDepth} levels`
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNulOrDepth(value[i], depth + 1, `${path}[${i}]`)
      if (found) return found
    }
    return undefined
  }
  for (const [key, child] of Object.entries(value)) {
    const at = path === '' ? clip(key) : `${path}.${clip(key)}`
    if (key.includes('\u0000')) return `${at}: key must not contain U+0000`
    const found = findNulOrDepth(child, depth + 1, at)
    if (found) return found
  }
  return undefined
}

function fail(reason: string): ParseObservationResult {
  return { ok: false, reason }
}

function clip(text: string, max = 40): string {
  // eslint-disable-next-line no-control-regex
  const safe = text.replace(/[\u0000-\u001f\u007f]/g, '?')
  return safe.length > max ? `${safe.slice(0, max)}…` : safe
}

function quote(text: string): string {
  return JSON.stringify(clip(text))
}
