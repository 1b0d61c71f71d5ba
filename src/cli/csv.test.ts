import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { csvCell, csvRow } from './csv.js'

describe('csvCell', () => {
  it('leaves plain text alone and empties null', () => {
    assert.equal(csvCell('deploy-bot'), 'deploy-bot')
    assert.equal(csvCell(null), '')
    assert.equal(csvCell(undefined), '')
    assert.equal(csvCell(3), '3')
  })
  it('quotes commas, quotes, line breaks and edge spaces', () => {
    assert.equal(csvCell('a,b'), '"a,b"')
    assert.equal(csvCell('say "hi"'), '"say ""hi"""')
    assert.equal(csvCell('two\nlines'), '"two\nlines"')
    assert.equal(csvCell(' padded'), '" padded"')
  })
  it('defuses cells a spreadsheet would run as formulas', () => {
    assert.equal(csvCell('=HYPERLINK("http://evil")'), `"'=HYPERLINK(""http://evil"")"`)
    assert.equal(csvCell('+1'), "'+1")
    assert.equal(csvCell('-2+3'), "'-2+3")
    assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)")
    assert.equal(csvCell('\tcmd'), "'\tcmd")
  })
})

/** A small RFC 4180 reader, to check that rows parse back to what was written. */
function parseCsvRecord(text: string): string[] {
  const cells: string[] = []
  let i = 0
  for (;;) {
    let cell = ''
    if (text[i] === '"') {
      i++
      for (;;) {
        if (text[i] === '"' && text[i + 1] === '"') {
          cell += '"'
          i += 2
        } else if (text[i] === '"') {
          i++
          break
        } else cell += text[i++]
      }
    } else {
      while (text[i] !== ',' && !(text[i] === '\r' && text[i + 1] === '\n')) cell += text[i++]
    }
    cells.push(cell)
    if (text[i] === ',') i++
    else return cells
  }
}

describe('csvRow', () => {
  it('ends with CRLF and round-trips any text (modulo the formula guard)', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 6 }), (values) => {
        const row = csvRow(values)
        assert.ok(row.endsWith('\r\n'))
        const back = parseCsvRecord(row)
        assert.deepEqual(
          back,
          values.map((v) => (/^[=+\-@\t\r]/.test(v) ? `'${v}` : v)),
        )
      }),
    )
  })
})
