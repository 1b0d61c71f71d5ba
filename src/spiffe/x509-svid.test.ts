import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate, generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { testIntermediate, testLeaf, testRoot, type TestCa } from '../ca/testing/pki.js'
import type { TrustBundle } from './types.js'
import { validateX509Svid } from './x509-svid.js'

const td = 'example.org'
const root = testRoot(td)
const bundle: TrustBundle = {
  trustDomain: td,
  x509Authorities: [root.der],
  jwtAuthorities: [],
  sequence: 1,
  refreshHintSeconds: 300,
}
const now = new Date()
/** openssl starts its certificates at the current second. */
const soon = () => new Date(Date.now() + 2000)
const dir = mkdtempSync(join(tmpdir(), 'tessera-x509-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** A leaf made by openssl with the given extension lines, signed by `issuer`. */
function opensslLeaf(issuer: TestCa, extLines: string[], name: string): Buffer {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  writeFileSync(join(dir, `${name}.key`), key.export({ type: 'pkcs8', format: 'pem' }))
  writeFileSync(join(dir, 'ca.pem'), new X509Certificate(issuer.der).toString())
  writeFileSync(join(dir, 'ca.key'), issuer.key.export({ type: 'pkcs8', format: 'pem' }))
  writeFileSync(join(dir, `${name}.ext`), extLines.join('\n') + '\n')
  const csr = execFileSync(
    'openssl',
    ['req', '-new', '-key', join(dir, `${name}.key`), '-subj', '/O=Test'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
  const pem = execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-CA',
      join(dir, 'ca.pem'),
      '-CAkey',
      join(dir, 'ca.key'),
      '-days',
      '1',
      '-extfile',
      join(dir, `${name}.ext`),
    ],
    { input: csr, stdio: ['pipe', 'pipe', 'ignore'] },
  )
  return Buffer.from(new X509Certificate(pem).raw)
}

const reason = (fn: () => unknown): string => {
  try {
    fn()
    return 'ok'
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'TSR_X509_SVID_INVALID', String(err))
    return String((err as { details?: { reason?: string } }).details?.reason)
  }
}

describe('X509-SVID validation', () => {
  it('accepts a leaf signed by a bundle root, and one through an intermediate', () => {
    const leaf = testLeaf(root, 'spiffe://example.org/web')
    const v = validateX509Svid([leaf.der], bundle, now)
    assert.equal(v.spiffeId, 'spiffe://example.org/web')
    assert.equal(v.path.length, 2)
    const mid = testIntermediate(td, root)
    const leaf2 = testLeaf(mid, 'spiffe://example.org/db')
    const v2 = validateX509Svid([leaf2.der, mid.der], new Map([[td, bundle]]), now)
    assert.equal(v2.path.length, 3)
  })

  it('refuses a chain that does not lead to the bundle of the leaf trust domain', () => {
    const stranger = testRoot(td)
    assert.equal(
      reason(() =>
        validateX509Svid([testLeaf(stranger, 'spiffe://example.org/x').der], bundle, now),
      ),
      'untrusted',
    )
    const mid = testIntermediate(td, root)
    assert.equal(
      reason(() => validateX509Svid([testLeaf(mid, 'spiffe://example.org/x').der], bundle, now)),
      'untrusted',
    )
    // A leaf from another trust domain is checked against that domain's bundle only.
    const otherLeaf = testLeaf(root, 'spiffe://other.org/x')
    assert.equal(
      reason(() => validateX509Svid([otherLeaf.der], new Map([[td, bundle]]), now)),
      'no-bundle',
    )
    assert.equal(
      reason(() => validateX509Svid([otherLeaf.der], bundle, now)),
      'no-bundle',
    )
  })

  it('checks validity windows', () => {
    const expired = testLeaf(root, 'spiffe://example.org/x', {
      notBefore: new Date(now.getTime() - 7200_000),
      notAfter: new Date(now.getTime() - 3600_000),
    })
    assert.equal(
      reason(() => validateX509Svid([expired.der], bundle, now)),
      'expired',
    )
    const later = testLeaf(root, 'spiffe://example.org/x', {
      notBefore: new Date(now.getTime() + 3600_000),
      notAfter: new Date(now.getTime() + 7200_000),
    })
    assert.equal(
      reason(() => validateX509Svid([later.der], bundle, now)),
      'not-yet-valid',
    )
  })

  it('applies the leaf rules to certificates made by openssl', () => {
    const base = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
    ]
    const ok = opensslLeaf(root, [...base, 'subjectAltName=URI:spiffe://example.org/ok'], 'ok')
    assert.equal(validateX509Svid([ok], bundle, soon()).spiffeId, 'spiffe://example.org/ok')
    const cases: [string[], string][] = [
      [
        [...base, 'subjectAltName=URI:spiffe://example.org/a,URI:spiffe://example.org/b'],
        'uri-san-count',
      ],
      [[...base, 'subjectAltName=DNS:a.example.org'], 'uri-san-count'],
      [[...base, 'subjectAltName=URI:https://example.org/a'], 'uri-san-not-spiffe'],
      [[...base, 'subjectAltName=URI:spiffe://example.org'], 'root-path'],
      [
        [
          'basicConstraints=critical,CA:TRUE',
          'keyUsage=critical,digitalSignature',
          'subjectAltName=URI:spiffe://example.org/a',
        ],
        'leaf-is-ca',
      ],
      [
        [
          'keyUsage=critical,digitalSignature,keyCertSign',
          'subjectAltName=URI:spiffe://example.org/a',
        ],
        'leaf-signs',
      ],
      [
        ['keyUsage=critical,digitalSignature,cRLSign', 'subjectAltName=URI:spiffe://example.org/a'],
        'leaf-signs',
      ],
      [
        ['keyUsage=digitalSignature', 'subjectAltName=URI:spiffe://example.org/a'],
        'key-usage-not-critical',
      ],
      [
        ['keyUsage=critical,keyEncipherment', 'subjectAltName=URI:spiffe://example.org/a'],
        'no-digital-signature',
      ],
      [['subjectAltName=URI:spiffe://example.org/a'], 'key-usage-missing'],
      [
        [
          'keyUsage=critical,digitalSignature',
          'extendedKeyUsage=serverAuth',
          'subjectAltName=URI:spiffe://example.org/a',
        ],
        'eku',
      ],
    ]
    cases.forEach(([lines, expected], k) => {
      assert.equal(
        reason(() => validateX509Svid([opensslLeaf(root, lines, `c${k}`)], bundle, soon())),
        expected,
        lines.join('; '),
      )
    })
  })

  it('refuses an intermediate that is not a CA, and garbage', () => {
    const fakeMid = testLeaf(root, 'spiffe://example.org/mid')
    const leaf = testLeaf({ der: fakeMid.der, key: fakeMid.key }, 'spiffe://example.org/x')
    // OpenSSL's issuer check already refuses a non-CA issuer; either way the chain is refused.
    assert.ok(
      ['untrusted', 'intermediate-not-ca'].includes(
        reason(() => validateX509Svid([leaf.der, fakeMid.der], bundle, now)),
      ),
    )
    assert.equal(
      reason(() => validateX509Svid([Buffer.from('nope')], bundle, now)),
      'malformed',
    )
    assert.equal(
      reason(() => validateX509Svid([], bundle, now)),
      'empty',
    )
  })
})
