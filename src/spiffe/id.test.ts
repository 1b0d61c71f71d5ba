import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isTesseraError } from '../errors.js'
import {
  formatSpiffeId,
  parseSpiffeId,
  parseTrustDomain,
  parseWorkloadSpiffeId,
  trustDomainId,
} from './id.js'

function reasonOf(input: string): string {
  try {
    parseSpiffeId(input)
    return 'ok'
  } catch (err) {
    assert.ok(isTesseraError(err, 'TSR_SPIFFE_ID_INVALID'), String(err))
    return String(err.details?.reason)
  }
}

describe('SPIFFE ID', () => {
  it('parses valid IDs into trust domain and path', () => {
    assert.deepEqual(parseSpiffeId('spiffe://example.org/ns/prod/sa/web'), {
      trustDomain: 'example.org',
      path: '/ns/prod/sa/web',
    })
    assert.deepEqual(parseSpiffeId('spiffe://example.org'), {
      trustDomain: 'example.org',
      path: '',
    })
    assert.deepEqual(parseSpiffeId('spiffe://1.2.3.4/A_b-c.d'), {
      trustDomain: '1.2.3.4',
      path: '/A_b-c.d',
    })
    assert.equal(parseSpiffeId('spiffe://td/...').path, '/...')
  })

  it('names the rule each invalid ID breaks', () => {
    const cases: [string, string][] = [
      ['', 'empty'],
      ['http://example.org/a', 'scheme'],
      ['SPIFFE://example.org/a', 'scheme'],
      ['spiffe:/example.org/a', 'scheme'],
      ['spiffe:///a', 'trust-domain-empty'],
      ['spiffe://', 'trust-domain-empty'],
      ['spiffe://Example.org/a', 'trust-domain-chars'],
      ['spiffe://exa mple.org', 'trust-domain-chars'],
      ['spiffe://user@example.org/a', 'userinfo'],
      ['spiffe://example.org:8080/a', 'port'],
      ['spiffe://[::1]/a', 'port'],
      ['spiffe://example.org/a?x=1', 'query'],
      ['spiffe://example.org/a#frag', 'fragment'],
      ['spiffe://example.org/a%20b', 'percent-encoding'],
      ['spiffe://ex%41mple.org/a', 'percent-encoding'],
      ['spiffe://example.org/a//b', 'empty-segment'],
      ['spiffe://example.org/', 'empty-segment'],
      ['spiffe://example.org/a/./b', 'dot-segment'],
      ['spiffe://example.org/a/..', 'dot-segment'],
      ['spiffe://example.org/a/', 'trailing-slash'],
      ['spiffe://example.org/a*b', 'path-chars'],
      ['spiffe://example.org/é', 'path-chars'],
      ['spiffe://' + 'a'.repeat(256), 'trust-domain-too-long'],
      ['spiffe://example.org/' + 'a'.repeat(2048), 'too-long'],
    ]
    for (const [input, reason] of cases) assert.equal(reasonOf(input), reason, input)
  })

  it('accepts IDs of exactly 2048 bytes and refuses 2049', () => {
    const base = 'spiffe://example.org/'
    assert.equal(reasonOf(base + 'a'.repeat(2048 - base.length)), 'ok')
    assert.equal(reasonOf(base + 'a'.repeat(2049 - base.length)), 'too-long')
  })

  it('checks trust domains alone and workload IDs', () => {
    assert.equal(parseTrustDomain('example.org'), 'example.org')
    assert.equal(parseTrustDomain('spiffe://example.org'), 'example.org')
    assert.throws(() => parseTrustDomain('spiffe://example.org/a'), {
      code: 'TSR_SPIFFE_ID_INVALID',
    })
    assert.throws(() => parseTrustDomain('EXAMPLE.org'), { code: 'TSR_SPIFFE_ID_INVALID' })
    assert.equal(trustDomainId('example.org'), 'spiffe://example.org')
    assert.throws(() => parseWorkloadSpiffeId('spiffe://example.org'), {
      code: 'TSR_SPIFFE_ID_INVALID',
    })
    assert.equal(formatSpiffeId({ trustDomain: 'td', path: '/a/b' }), 'spiffe://td/a/b')
    assert.throws(() => formatSpiffeId({ trustDomain: 'td', path: 'a' }))
  })

  const tdArb = fc.stringMatching(/^[a-z0-9._-]{1,30}$/)
  const segmentArb = fc
    .stringMatching(/^[a-zA-Z0-9._-]{1,12}$/)
    .filter((s) => s !== '.' && s !== '..')

  it('round-trips every generated valid ID (fuzz)', () => {
    fc.assert(
      fc.property(tdArb, fc.array(segmentArb, { maxLength: 6 }), (td, segments) => {
        const path = segments.map((s) => '/' + s).join('')
        const text = formatSpiffeId({ trustDomain: td, path })
        assert.deepEqual(parseSpiffeId(text), { trustDomain: td, path })
      }),
      { numRuns: 500 },
    )
  })

  it('throws nothing but TSR_SPIFFE_ID_INVALID on arbitrary input (fuzz)', () => {
    const arb = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 80 }).map((s) => 'spiffe://' + s),
      fc.tuple(tdArb, fc.string({ maxLength: 30 })).map(([td, p]) => `spiffe://${td}/${p}`),
    )
    fc.assert(
      fc.property(arb, (input) => {
        try {
          const id = parseSpiffeId(input)
          // Whatever parses formats back to the same text.
          assert.equal(formatSpiffeId(id), input)
        } catch (err) {
          assert.ok(isTesseraError(err, 'TSR_SPIFFE_ID_INVALID'), String(err))
        }
      }),
      { numRuns: 2000 },
    )
  })
})
