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
  const maxDepth = options.maxDepth ?? 64
  let i = 0
  const fail = (message: string): never => {
    throw new TesseraError(options.code, `${options.what} is not valid JSON: ${message}`, {
      details: { offset: i },
    })
  }

  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i)
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++
      else return
    }
  }

  const value = (depth: number): unknown => {
    ws()
    const c = text[i]
    if (c === '{') return object(depth + 1)
    if (c === '[') return array(depth + 1)
    if (c === '"') return string()
    if (c === 't') return literal('true', true)
    if (c === 'f') return literal('false', false)
    if (c === 'n') return literal('null', null)
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number()
    return fail(c === undefined ? 'unexpected end' : `unexpected character at ${i}`)
  }

  const literal = (word: string, v: unknown): unknown => {
    if (text.startsWith(word, i)) {
      i += word.length
      return v
    }
    return fail(`unexpected token at ${i}`)
  }

  const number = (): number => {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y
    m.lastIndex = i
    const found = m.exec(text)
    if (!found) return fail(`bad number at ${i}`)
    i += found[0].length
    return Number(found[0])
  }

  const string = (): string => {
    i++ // opening quote
    let out = ''
    let start = i
    for (;;) {
      if (i >= text.length) return fail('unterminated string')
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        out += text.slice(start, i)
        i++
        return out
      }
      if (c < 0x20) return fail(`control character in string at ${i}`)
      if (c === 0x5c) {
        out += text.slice(start, i)
        const e = text[i + 1]
        i += 2
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
            const hex = text.slice(i, i + 4)
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) return fail(`bad \\u escape at ${i}`)
            out += String.fromCharCode(parseInt(hex, 16))
            i += 4
            break
          }
          default:
            return fail(`bad escape at ${i - 1}`)
        }
        start = i
        continue
      }
      i++
    }
  }

  const array = (depth: number): unknown[] => {
    if (depth > maxDepth) return fail('nested too deeply')
    i++
    const out: unknown[] = []
    ws()
    if (text[i] === ']') {
      i++
      return out
    }
    for (;;) {
      out.push(value(depth))
      ws()
      if (text[i] === ',') {
        i++
        continue
      }
      if (text[i] === ']') {
        i++
        return out
      }
      return fail(`expected , or ] at ${i}`)
    }
  }

  const object = (depth: number): Record<string, unknown> => {
    if (depth > maxDepth) return fail('nested too deeply')
    i++
    const out = Object.create(null) as Record<string, unknown>
    const seen = new Set<string>()
    ws()
    if (text[i] === '}') {
      i++
      return out
    }
    for (;;) {
      ws()
      if (text[i] !== '"') return fail(`expected a key at ${i}`)
      const key = string()
      if (seen.has(key)) {
        throw new TesseraError(
          options.code,
          `${options.what} has the key ${JSON.stringify(key.slice(0, 100))} twice`,
          { details: { duplicateKey: key.slice(0, 100) } },
        )
      }
      seen.add(key)
      ws()
      if (text[i] !== ':') return fail(`expected : at ${i}`)
      i++
      out[key] = value(depth)
      ws()
      if (text[i] === ',') {
        i++
        continue
      }
      if (text[i] === '}') {
        i++
        return out
      }
      return fail(`expected , or } at ${i}`)
    }
  }

  if (typeof text !== 'string') return fail('not a string')
  const result = value(0)
  ws()
  if (i !== text.length) fail(`trailing data at ${i}`)
  return result
}
