import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isTesseraError } from '../../errors.js'
import { parseCsv } from './csv.js'
import { parseJsonInput } from './json.js'

describe('parseJsonInput', () => {
  it('parses valid JSON like JSON.parse', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v)
        const r = parseJsonInput(text, 'f.json')
        assert.equal(r.error, undefined)
        assert.deepEqual(r.value, JSON.parse(text))
      }),
    )
  })

  it('keeps complete items of a truncated list and names the path', () => {
    const text = '{"kind":"List","items":[{"a":1},{"b":[1,2]},{"c":{"d":"x'
    const r = parseJsonInput(text, 'dump.json')
    assert.deepEqual(r.value, { kind: 'List', items: [{ a: 1 }, { b: [1, 2] }] })
    assert.equal(r.error?.code, 'TSR_DISCOVERY_INPUT')
    assert.equal(
      r.error?.message,
      `dump.json at $.items[2].c.d (line 1, column ${text.length + 1}, byte ${text.length}): invalid JSON: unexpected end of input (unterminated string)`,
    )
  })

  it('reports line, column and byte offset with multi-byte text before the error', () => {
    const text = '{\n  "name": "café",\n  "x": tru }'
    const r = parseJsonInput(Buffer.from(text), 'a.json')
    assert.deepEqual(r.value, { name: 'café' })
    assert.equal(r.error?.details?.line, 3)
    assert.equal(r.error?.details?.path, '$.x')
    assert.equal(r.error?.details?.offset, Buffer.byteLength(text.slice(0, text.indexOf('tru'))))
  })

  it('keeps __proto__ as data and refuses absurd nesting with an error, not a crash', () => {
    const r = parseJsonInput('{"__proto__": {"polluted": 1}, "a": [', 'p.json')
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.ok(Object.hasOwn(r.value as object, '__proto__'))
    const deep = '['.repeat(100_000)
    const d = parseJsonInput(deep, 'deep.json')
    assert.match(d.error!.message, /nested deeper than 512 levels|unexpected end of input/)
  })

  it('reports a byte that is not UTF-8 with its offset', () => {
    assert.throws(
      () => parseJsonInput(Buffer.from([0x7b, 0x0a, 0x22, 0xff, 0x22, 0x7d]), 'b.json'),
      (e: Error) =>
        isTesseraError(e, 'TSR_DISCOVERY_INPUT') &&
        /b\.json at \(line 2, byte 3\): not UTF-8/.test(e.message),
    )
  })

  it('fuzz: truncated or mangled JSON never throws, and the error is a TesseraError with a position', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), fc.string(), (v, cut, junk) => {
        const text = JSON.stringify(v, null, 1)
        const mangled = text.slice(0, cut % (text.length + 1)) + junk
        const r = parseJsonInput(mangled, 'z.json')
        if (r.error) {
          assert.equal(r.error.code, 'TSR_DISCOVERY_INPUT')
          assert.equal(typeof r.error.details?.offset, 'number')
          assert.match(String(r.error.details?.path), /^\$/)
        } else assert.deepEqual(r.value, JSON.parse(mangled))
      }),
      { numRuns: 500 },
    )
  })

  it('fuzz: arbitrary bytes give a value or a TesseraError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          parseJsonInput(Buffer.from(bytes), 'r.json')
        } catch (e) {
          assert.ok(isTesseraError(e, 'TSR_DISCOVERY_INPUT'), String(e))
        }
      }),
      { numRuns: 500 },
    )
  })
})

describe('parseCsv', () => {
  it('reads quotes, escaped quotes, quoted line breaks and CRLF', () => {
    const r = parseCsv('a,b\r\n"x, y","say ""hi"""\r\n"multi\nline",2\n', 'c.csv')
    assert.deepEqual(r.errors, [])
    assert.deepEqual(
      r.rows.map((x) => [x.line, x.record.a, x.record.b]),
      [
        [2, 'x, y', 'say "hi"'],
        [3, 'multi\nline', '2'],
      ],
    )
  })

  it('reports an unterminated quote and a short row by line, keeping the good rows', () => {
    const r = parseCsv('a,b\n1,2\n3\n4,5\n"6,7\n', 'c.csv')
    assert.deepEqual(
      r.rows.map((x) => x.record.a),
      ['1', '4'],
    )
    assert.deepEqual(
      r.errors.map((e) => e.message),
      [
        'c.csv at (line 5): unterminated quoted field (file truncated?)',
        'c.csv at (line 3): expected 2 fields, got 1 (truncated or malformed record)',
      ],
    )
  })

  it('fuzz: round-trips any table of strings', () => {
    const cell = fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', 'é', ' ', 'z') })
    fc.assert(
      fc.property(fc.array(fc.tuple(cell, cell), { maxLength: 10 }), (rows) => {
        const q = (s: string) => `"${s.replaceAll('"', '""')}"`
        const text = ['h1,h2', ...rows.map(([a, b]) => `${q(a)},${q(b)}`)].join('\n')
        const r = parseCsv(text, 'f.csv')
        assert.deepEqual(r.errors, [])
        assert.deepEqual(
          r.rows.map((x) => [x.record.h1, x.record.h2]),
          rows,
        )
      }),
    )
  })

  it('fuzz: any text gives rows and TesseraErrors with a line, never a throw', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', '\r', 'x') }), (text) => {
        const r = parseCsv('h1,h2\n' + text, 'f.csv')
        for (const e of r.errors) {
          assert.equal(e.code, 'TSR_DISCOVERY_INPUT')
          assert.ok(Number.isInteger(e.details?.line))
        }
        for (const row of r.rows) assert.equal(Object.keys(row.record).length, 2)
      }),
      { numRuns: 1000 },
    )
  })
})
