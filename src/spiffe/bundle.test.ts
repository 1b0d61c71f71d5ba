import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isTesseraError } from '../errors.js'
import { testRoot } from '../ca/testing/pki.js'
import { parseBundle, parseBundleMap, serializeBundle, serializeBundleMap } from './bundle.js'
import { parseStrictJson } from './strict-json.js'
import type { TrustBundle } from './types.js'

const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' })
const root = testRoot('example.org')
const bundle: TrustBundle = {
  trustDomain: 'example.org',
  x509Authorities: [root.der],
  jwtAuthorities: [{ kid: 'k1', publicKey: jwk }],
  sequence: 42,
  refreshHintSeconds: 300,
}

const strict = (text: string) => parseStrictJson(text, { code: 'TSR_BUNDLE_INVALID', what: 'x' })

describe('strict JSON', () => {
  it('parses what JSON.parse parses', () => {
    for (const text of [
      '{"a":[1,2.5e3,-0,"x\\u00e9\\n",true,false,null],"b":{}}',
      '[]',
      '"s"',
      ' 1 ',
    ]) {
      assert.equal(JSON.stringify(strict(text)), JSON.stringify(JSON.parse(text)))
    }
  })

  it('rejects duplicate keys at any depth, and junk', () => {
    for (const text of ['{"a":1,"a":2}', '{"x":{"k":1,"k":1}}', '[{"u":1,"\\u0075":2}]']) {
      assert.throws(() => strict(text), /twice/)
    }
    for (const text of ['', '{', '{"a":1,}', '[1,]', '01', '"\\x"', 'nul', '{"a":1} x', '"a\nb"']) {
      assert.throws(() => strict(text), { code: 'TSR_BUNDLE_INVALID' }, text)
    }
    assert.throws(() => strict('['.repeat(100) + ']'.repeat(100)), /deeply/)
  })

  it('treats __proto__ as a plain key', () => {
    const doc = strict('{"__proto__":{"polluted":true}}') as Record<string, unknown>
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.deepEqual(Object.keys(doc), ['__proto__'])
  })

  it('agrees with JSON.parse on arbitrary JSON without duplicate keys (fuzz)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v)
        assert.deepEqual(JSON.stringify(strict(text)), JSON.stringify(JSON.parse(text)))
      }),
      { numRuns: 500 },
    )
  })
})

describe('SPIFFE bundle', () => {
  it('serialises x509-svid JWKs with x5c and no kid, jwt-svid JWKs with a kid', () => {
    const doc = JSON.parse(serializeBundle(bundle)) as {
      keys: Record<string, unknown>[]
      spiffe_sequence: number
      spiffe_refresh_hint: number
    }
    assert.equal(doc.spiffe_sequence, 42)
    assert.equal(doc.spiffe_refresh_hint, 300)
    const [x, j] = doc.keys
    assert.equal(x!.use, 'x509-svid')
    assert.equal(x!.kid, undefined)
    assert.deepEqual(x!.x5c, [root.der.toString('base64')])
    assert.equal(x!.kty, 'EC')
    assert.equal(j!.use, 'jwt-svid')
    assert.equal(j!.kid, 'k1')
    assert.equal(j!.d, undefined)
  })

  it('round-trips', () => {
    const back = parseBundle(serializeBundle(bundle), 'example.org')
    assert.equal(back.sequence, 42)
    assert.equal(back.refreshHintSeconds, 300)
    assert.ok(back.x509Authorities[0]!.equals(root.der))
    assert.equal(back.jwtAuthorities[0]!.kid, 'k1')
    assert.equal(back.jwtAuthorities[0]!.publicKey.x, jwk.x)
  })

  it('rejects duplicate keys, a kid on an x509-svid key, a jwt-svid key without kid', () => {
    const text = serializeBundle(bundle)
    assert.throws(
      () => parseBundle(text.replace('{"keys"', '{"spiffe_sequence":1,"keys"'), 'example.org'),
      /twice/,
    )
    const doc = JSON.parse(text) as { keys: Record<string, unknown>[] }
    const withKid = structuredClone(doc)
    withKid.keys[0]!.kid = 'x'
    assert.throws(() => parseBundle(JSON.stringify(withKid), 'example.org'), {
      code: 'TSR_BUNDLE_INVALID',
    })
    const noKid = structuredClone(doc)
    delete noKid.keys[1]!.kid
    assert.throws(() => parseBundle(JSON.stringify(noKid), 'example.org'), {
      code: 'TSR_BUNDLE_INVALID',
    })
    const priv = structuredClone(doc)
    priv.keys[1]!.d = 'AAAA'
    assert.throws(() => parseBundle(JSON.stringify(priv), 'example.org'), /public keys only/)
    assert.throws(() => parseBundle('{"keys":{}}', 'example.org'), /keys/)
    assert.throws(
      () => parseBundle('{"keys":[],"spiffe_sequence":-1}', 'example.org'),
      /spiffe_sequence/,
    )
  })

  it('ignores keys of unknown kty or use, and x509-svid keys without x5c', () => {
    const b = parseBundle(
      JSON.stringify({
        keys: [
          { kty: 'XX', use: 'x509-svid' },
          { kty: 'EC', use: 'wit-svid', kid: 'w' },
          { kty: 'EC', use: 'X509-SVID' },
          { kty: 'EC', use: 'x509-svid' },
          { kty: 'EC' },
        ],
        extra: 1,
      }),
      'example.org',
    )
    assert.equal(b.x509Authorities.length, 0)
    assert.equal(b.jwtAuthorities.length, 0)
    assert.equal(b.sequence, 0)
  })

  it('parses bundle maps, rejecting a trust domain given twice', () => {
    const other = { ...bundle, trustDomain: 'other.org', jwtAuthorities: [] }
    const text = serializeBundleMap([bundle, other])
    const map = parseBundleMap(text)
    assert.deepEqual([...map.keys()], ['example.org', 'other.org'])
    assert.equal(map.get('example.org')!.refreshHintSeconds, 0)
    const inner = JSON.stringify({ keys: [] })
    assert.throws(
      () => parseBundleMap(`{"trust_domains":{"a.org":${inner},"a.org":${inner}}}`),
      /twice/,
    )
    assert.throws(() => parseBundleMap(`{"trust_domains":{"A.org":${inner}}}`), {
      code: 'TSR_SPIFFE_ID_INVALID',
    })
  })

  it('throws nothing but TesseraError on arbitrary and mutated input (fuzz)', () => {
    const good = serializeBundle(bundle)
    const arb = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .tuple(fc.nat(good.length - 1), fc.string({ minLength: 1, maxLength: 4 }))
        .map(([at, s]) => good.slice(0, at) + s + good.slice(at + s.length)),
      fc.jsonValue().map((v) => JSON.stringify({ keys: [v] })),
      fc
        .record(
          {
            kty: fc.constantFrom('EC', 'RSA', 'OKP'),
            use: fc.constantFrom('x509-svid', 'jwt-svid'),
            kid: fc.option(fc.string()),
            x5c: fc.option(fc.array(fc.base64String())),
            x: fc.option(fc.string()),
            crv: fc.option(fc.string()),
          },
          { requiredKeys: [] },
        )
        .map((k) => JSON.stringify({ keys: [k] })),
    )
    fc.assert(
      fc.property(arb, (text) => {
        for (const parse of [() => parseBundle(text, 'example.org'), () => parseBundleMap(text)]) {
          try {
            parse()
          } catch (err) {
            assert.ok(isTesseraError(err), String(err))
          }
        }
      }),
      { numRuns: 1000 },
    )
  })
})
