import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { cleanCell, renderFields, renderTable, truncate } from './table.js'

describe('truncate', () => {
  it('cuts at the end or in the middle with an ellipsis, to the exact width', () => {
    assert.equal(truncate('abcdefghij', 5), 'abcd…')
    assert.equal(truncate('abcdefghij', 5, 'middle'), 'ab…ij')
    assert.equal(truncate('arn:aws:iam::123456789012:role/very-long-name', 20, 'middle').length, 20)
    assert.equal(truncate('short', 10), 'short')
  })
})

describe('cleanCell', () => {
  it('neutralises terminal escapes and bidi overrides, dashes empties', () => {
    assert.equal(cleanCell('evil\u001b[2Jname'), 'evil?[2Jname')
    assert.equal(cleanCell('a\u202eb'), 'a?b')
    assert.equal(cleanCell('line\nbreak'), 'line?break')
    assert.equal(cleanCell(null), '-')
    assert.equal(cleanCell(''), '-')
  })
})

describe('renderTable', () => {
  it('aligns columns two spaces apart, right-aligns numbers, trims line ends', () => {
    const out = renderTable(
      [
        { header: 'NAME', value: (r: { n: string; c: number }) => r.n },
        { header: 'COUNT', value: (r) => r.c, align: 'right' },
      ],
      [
        { n: 'a', c: 5 },
        { n: 'longer-name', c: 1234 },
      ],
    )
    assert.equal(out, 'NAME         COUNT\na                5\nlonger-name   1234\n')
  })
  it('applies maxWidth before measuring', () => {
    const out = renderTable(
      [{ header: 'REF', value: (r: string) => r, maxWidth: 6, truncate: 'middle' }],
      ['abcdefghijkl'],
    )
    assert.equal(out, 'REF\nabc…kl\n')
  })
})

describe('renderFields', () => {
  it('pads keys and skips undefined values', () => {
    assert.equal(
      renderFields(
        [
          ['id', 'x'],
          ['owner', undefined],
          ['last used', null],
        ],
        '  ',
      ),
      '  id         x\n  last used  -\n',
    )
  })
})
