import { TesseraError, type TesseraErrorCode } from '../errors.js'

/**
 * A strict JSON parser (RFC 8259) for untrusted SPIFFE documents. Unlike `JSON.parse` it rejects an
 * object with a duplicate key (the SPIFFE bundle map standard requires this; `JSON.parse` silently
 * keeps the last one), and it bounds nesting depth. Objects come back with a null prototype, so a
 * `__proto__` key is plain data.
 */
export interface StrictJsonOptions {
  /** The error code a failure carries. */
  code: TesseraErrorCode
  /** What is being parsed, for messages (`bundle`, `JWT header`). */
  what: string
  /** Deepest nesting of arrays and objects (default 64). */
  maxDepth?: number
}

export function parseStrictJson(text: string, options: StrictJsonOptions): unknown {
  if (typeof text !== 'string') {
    throw new TesseraError(options.code, `${options.what} is not valid JSON: not a string`)
  }
  return new Parser(text, options).parse()
}

const numberPattern = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y
const hex4 = /^[0-9a-fA-F]{4}$/

/** One parse: the state lives on the instance, so no closures are made per call. */
class Parser {
  private i = 0
  private readonly maxDepth: number
  private readonly text: string
  private readonly options: StrictJsonOptions

  constructor(text: string, options: StrictJsonOptions) {
    this.text = text
    this.options = options
    this.maxDepth = options.maxDepth ?? 64
  }

  parse(): unknown {
    const result = this.value(0)
    this.ws()
    if (this.i !== this.text.length) this.fail(`trailing data at ${this.i}`)
    return result
  }

  private fail(message: string): never {
    throw new TesseraError(
      this.options.code,
      `${this.options.what} is not valid JSON: ${message}`,
      { details: { offset: this.i } },
    )
  }

  private ws(): void {
    const text = this.text
    for (;;) {
      const c = text.charCodeAt(this.i)
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++
      else return
    }
  }

  private value(depth: number): unknown {
    this.ws()
    const c = this.text[this.i]
    if (c === '{') return this.object(depth + 1)
    if (c === '[') return this.array(depth + 1)
    if (c === '"') return this.string()
    if (c === 't') return this.literal('true', true)
    if (c === 'f') return this.literal('false', false)
    if (c === 'n') return this.literal('null', null)
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number()
    return this.fail(c === undefined ? 'unexpected end' : `unexpected character at ${this.i}`)
  }

  private literal(word: string, v: unknown): unknown {
    if (this.text.startsWith(word, this.i)) {
      this.i += word.length
      return v
    }
    return this.fail(`unexpected token at ${this.i}`)
  }

  private number(): number {
    numberPattern.lastIndex = this.i
    const found = numberPattern.exec(this.text)
    if (!found) return this.fail(`bad number at ${this.i}`)
    this.i += found[0].length
    return Number(found[0])
  }

  private string(): string {
    const text = this.text
    this.i++ // opening quote
    let out = ''
    let start = this.i
    for (;;) {
      if (this.i >= text.length) return this.fail('unterminated string')
      const c = text.charCodeAt(this.i)
      if (c === 0x22) {
        out += text.slice(start, this.i)
        this.i++
        return out
      }
      if (c < 0x20) return this.fail(`control character in string at ${this.i}`)
      if (c === 0x5c) {
        out += text.slice(start, this.i)
        const e = text[this.i + 1]
        this.i += 2
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out += e
            break
          case 'b':
            out += '\b'
            break
          case 'f':
            out += '\f'
            break
          case 'n':
            out += '\n'
            break
          case 'r':
            out += '\r'
            break
          case 't':
            out += '\t'
            break
          case 'u': {
            const hex = text.slice(this.i, this.i + 4)
            if (!hex4.test(hex)) return this.fail(`bad \\u escape at ${this.i}`)
            out += String.fromCharCode(parseInt(hex, 16))
            this.i += 4
            break
          }
          default:
            return this.fail(`bad escape at ${this.i - 1}`)
        }
        start = this.i
        continue
      }
      this.i++
    }
  }

  private array(depth: number): unknown[] {
    if (depth > this.maxDepth) return this.fail('nested too deeply')
    this.i++
    const out: unknown[] = []
    this.ws()
    if (this.text[this.i] === ']') {
      this.i++
      return out
    }
    for (;;) {
      out.push(this.value(depth))
      this.ws()
      const c = this.text[this.i]
      if (c === ',') {
        this.i++
        continue
      }
      if (c === ']') {
        this.i++
        return out
      }
      return this.fail(`expected , or ] at ${this.i}`)
    }
  }

  private object(depth: number): Record<string, unknown> {
    if (depth > this.maxDepth) return this.fail('nested too deeply')
    this.i++
    const out = Object.create(null) as Record<string, unknown>
    const seen = new Set<string>()
    this.ws()
    if (this.text[this.i] === '}') {
      this.i++
      return out
    }
    for (;;) {
      this.ws()
      if (this.text[this.i] !== '"') return this.fail(`expected a key at ${this.i}`)
      const key = this.string()
      if (seen.has(key)) {
        throw new TesseraError(
          this.options.code,
          `${this.options.what} has the key ${JSON.stringify(key.slice(0, 100))} twice`,
          { details: { duplicateKey: key.slice(0, 100) } },
        )
      }
      seen.add(key)
      this.ws()
      if (this.text[this.i] !== ':') return this.fail(`expected : at ${this.i}`)
      this.i++
      out[key] = this.value(depth)
      this.ws()
      const c = this.text[this.i]
      if (c === ',') {
        this.i++
        continue
      }
      if (c === '}') {
        this.i++
        return out
      }
      return this.fail(`expected , or } at ${this.i}`)
    }
  }
}
