import { TesseraError } from '../../errors.js'

/** Where in an input a problem is: any of a line, a JSON path, a byte offset. */
export interface InputPosition {
  line?: number
  column?: number
  path?: string
  offset?: number
}

/**
 * The one error for bad connector input: `FILE: WHAT at POSITION`. The message never quotes input
 * content (a malformed export may hold a secret), only where it is.
 */
export function inputError(
  file: string,
  reason: string,
  position: InputPosition = {},
  cause?: unknown,
): TesseraError {
  const where: string[] = []
  if (position.path !== undefined) where.push(position.path)
  const coords: string[] = []
  if (position.line !== undefined) coords.push(`line ${position.line}`)
  if (position.column !== undefined) coords.push(`column ${position.column}`)
  if (position.offset !== undefined) coords.push(`byte ${position.offset}`)
  if (coords.length > 0) where.push(`(${coords.join(', ')})`)
  const at = where.length > 0 ? ` at ${where.join(' ')}` : ''
  return new TesseraError('TSR_DISCOVERY_INPUT', `${file}${at}: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { file, ...position },
  })
}

/** Decodes UTF-8 strictly; a bad byte is reported with its offset. A leading BOM is dropped. */
export function decodeUtf8(bytes: Buffer, file: string): string {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  } catch (err) {
    return failAtBadByte(bytes, file, err)
  }
}

function failAtBadByte(bytes: Buffer, file: string, cause: unknown): never {
  // Find the first offending byte by decoding growing prefixes (only on the error path).
  let lo = 0
  let hi = bytes.length
  const ok = (n: number) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: true })
      return true
    } catch {
      return false
    }
  }
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (ok(mid)) lo = mid
    else hi = mid - 1
  }
  let line = 1
  for (let i = 0; i < lo; i++) if (bytes[i] === 0x0a) line++
  throw inputError(file, 'not UTF-8 text', { line, offset: lo }, cause)
}

/** Line and column (1-based) of a character offset in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: offset - lineStart + 1 }
}

/** Byte offset of a character offset in `text` (UTF-8). */
export function byteOffset(text: string, offset: number): number {
  return Buffer.byteLength(text.slice(0, offset), 'utf8')
}

/** A TesseraError as it is; anything else as an input error naming the file. */
export function asInputError(err: unknown, file: string): TesseraError {
  if (err instanceof TesseraError) return err
  return inputError(
    file,
    `cannot read: ${(err as NodeJS.ErrnoException)?.code ?? String(err)}`,
    {},
    err,
  )
}
