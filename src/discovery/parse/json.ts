import type { TesseraError } from '../../errors.js'
import { byteOffset, decodeUtf8, inputError, lineColumn } from './input-error.js'

/**
 * JSON for connector exports, with two things `JSON.parse` does not give: the JSON path, line and
 * byte offset of a syntax error, and the part of the document that was valid before it. A truncated
 * `{"items": [a, b, {"meta` parses to `{items: [a, b]}` plus an error at `$.items[2].meta`.
 *
 * What a partial document keeps: every complete array element and object member; an incomplete
 * value inside an array is dropped (half an item would be wrong data), an incomplete array or object
 * under an object member is kept with its complete contents (so the lists of a top-level object
 * survive), and an incomplete scalar is dropped.
 */
export interface JsonResult {
  /** The whole document, or the valid part of it (undefined when nothing was). */
  value: unknown
  error?: TesseraError
  /** Where the error is, as keys and indexes (the first is the top-level member or element). */
  errorPath?: (string | number)[]
}

export const maxJsonDepth = 512

export function parseJsonInput(input: Buffer | string, file: string): JsonResult {
  const text = typeof input === 'string' ? stripBom(input) : decodeUtf8(input, file)
  try {
    return { value: JSON.parse(text) as unknown }
  } catch {
    // Parse again, slowly, to learn where and to keep what was valid.
  }
  const parser = new TolerantParser(text)
  try {
    const value = parser.document()
    return { value }
  } catch (err) {
    if (!(err instanceof ParseFailure)) throw err
    const { line, column } = lineColumn(text, err.offset)
    return {
      value: err.partial,
      errorPath: [...err.path],
      error: inputError(file, `invalid JSON: ${err.reason}`, {
        path: formatPath(err.path),
        line,
        column,
        offset: byteOffset(text, err.offset),
      }),
    }
  }
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/** `$.items[2].metadata["weird key"]` */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '$'
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p)) out += `.${p}`
    else out += `[${JSON.stringify(p)}]`
  }
  return out
}

class ParseFailure {
  readonly offset: number
  readonly path: readonly (string | number)[]
  readonly reason: string
  /** The valid part of the value being parsed, when it is a container worth keeping. */
  readonly partial: unknown
  constructor(
    offset: number,
    path: readonly (string | number)[],
    reason: string,
    partial: unknown,
  ) {
    this.offset = offset
    this.path = path
    this.reason = reason
    this.partial = partial
  }
}

const isContainer = (v: unknown): boolean => typeof v === 'object' && v !== null

class TolerantParser {
  private i = 0
  private readonly s: string
  constructor(s: string) {
    this.s = s
  }

  document(): unknown {
    const value = this.value([], 0)
    this.ws()
    if (this.i < this.s.length) this.fail([], 'unexpected content after the document', value)
    return value
  }

  private fail(path: readonly (string | number)[], reason: string, partial?: unknown): never {
    throw new ParseFailure(this.i, path, reason, partial)
  }

  private ws(): void {
    const s = this.s
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i)
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++
      else break
    }
  }

  private value(path: (string | number)[], depth: number): unknown {
    this.ws()
    if (depth > maxJsonDepth) this.fail(path, `nested deeper than ${maxJsonDepth} levels`)
    if (this.i >= this.s.length) this.fail(path, 'unexpected end of input')
    const c = this.s[this.i]!
    if (c === '{') return this.object(path, depth)
    if (c === '[') return this.array(path, depth)
    if (c === '"') return this.string(path)
    if (c === 't') return this.literal(path, 'true', true)
    if (c === 'f') return this.literal(path, 'false', false)
    if (c === 'n') return this.literal(path, 'null', null)
    if (c === '-' || (c >= '0' && c <= '9')) return this.number(path)
    return this.fail(path, 'unexpected character')
  }

  private literal<T>(path: (string | number)[], word: string, v: T): T {
    if (this.s.startsWith(word, this.i)) {
      this.i += word.length
      return v
    }
    if (word.startsWith(this.s.slice(this.i))) {
      this.i = this.s.length
      return this.fail(path, 'unexpected end of input')
    }
    return this.fail(path, 'unexpected character')
  }

  private number(path: (string | number)[]): number {
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
    m.lastIndex = this.i
    const found = m.exec(this.s)
    if (!found) this.fail(path, 'invalid number')
    this.i += found[0].length
    return Number(found[0])
  }

  private string(path: (string | number)[]): string {
    const s = this.s
    const start = ++this.i
    let out = ''
    let from = start
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i)
      if (c === 0x22) {
        out += s.slice(from, this.i)
        this.i++
        return out
      }
      if (c < 0x20) this.fail(path, 'control character in a string')
      if (c === 0x5c) {
        out += s.slice(from, this.i)
        const e = s[this.i + 1]
        if (e === undefined) {
          this.i = s.length
          this.fail(path, 'unexpected end of input')
        }
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        }
        if (e in simple) {
          out += simple[e]
          this.i += 2
        } else if (e === 'u') {
          const hex = s.slice(this.i + 2, this.i + 6)
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) {
            if (this.i + 6 > s.length) {
              this.i = s.length
              this.fail(path, 'unexpected end of input')
            }
            this.fail(path, 'invalid \\u escape')
          }
          out += String.fromCharCode(parseInt(hex, 16))
          this.i += 6
        } else this.fail(path, 'invalid escape')
        from = this.i
        continue
      }
      this.i++
    }
    return this.fail(path, 'unexpected end of input (unterminated string)')
  }

  private array(path: (string | number)[], depth: number): unknown[] {
    const arr: unknown[] = []
    this.i++
    this.ws()
    if (this.s[this.i] === ']') {
      this.i++
      return arr
    }
    for (;;) {
      const childPath = [...path, arr.length]
      try {
        arr.push(this.value(childPath, depth + 1))
      } catch (err) {
        // An incomplete element is dropped; the complete ones before it stay.
        if (err instanceof ParseFailure)
          throw new ParseFailure(err.offset, err.path, err.reason, arr)
        throw err
      }
      this.ws()
      const c = this.s[this.i]
      if (c === ',') {
        this.i++
        continue
      }
      if (c === ']') {
        this.i++
        return arr
      }
      if (c === undefined) this.fail(path, 'unexpected end of input (unclosed array)', arr)
      this.fail(path, 'expected , or ] in an array', arr)
    }
  }

  private object(path: (string | number)[], depth: number): Record<string, unknown> {
    const obj: Record<string, unknown> = {}
    this.i++
    this.ws()
    if (this.s[this.i] === '}') {
      this.i++
      return obj
    }
    for (;;) {
      this.ws()
      if (this.s[this.i] !== '"') {
        if (this.i >= this.s.length)
          this.fail(path, 'unexpected end of input (unclosed object)', obj)
        this.fail(path, 'expected a member name', obj)
      }
      let key: string
      try {
        key = this.string(path)
      } catch (err) {
        if (err instanceof ParseFailure)
          throw new ParseFailure(err.offset, err.path, err.reason, obj)
        throw err
      }
      this.ws()
      if (this.s[this.i] !== ':') {
        if (this.i >= this.s.length) this.fail([...path, key], 'unexpected end of input', obj)
        this.fail([...path, key], 'expected :', obj)
      }
      this.i++
      try {
        setMember(obj, key, this.value([...path, key], depth + 1))
      } catch (err) {
        if (err instanceof ParseFailure) {
          // An incomplete list or object under a member keeps its complete contents.
          if (isContainer(err.partial)) setMember(obj, key, err.partial)
          throw new ParseFailure(err.offset, err.path, err.reason, obj)
        }
        throw err
      }
      this.ws()
      const c = this.s[this.i]
      if (c === ',') {
        this.i++
        continue
      }
      if (c === '}') {
        this.i++
        return obj
      }
      if (c === undefined) this.fail(path, 'unexpected end of input (unclosed object)', obj)
      this.fail(path, 'expected , or } in an object', obj)
    }
  }
}

/** Own data property even for `__proto__`, as JSON.parse does. */
function setMember(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
}
