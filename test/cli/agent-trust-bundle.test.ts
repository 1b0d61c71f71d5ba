import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { describe, it } from 'node:test'
import { trustBundlePem } from '../../src/cli/commands/agent.js'

const pem = execFileSync(
  'openssl',
  [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=private-root',
    '-keyout',
    '/dev/null',
  ],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
)

describe('tessera agent --trust-bundle', () => {
  it('takes PEM certificates as they are', () => {
    const out = trustBundlePem(`# our root\n${pem}`)
    assert.equal(new X509Certificate(out).subject, 'CN=private-root')
  })

  it("takes a SPIFFE bundle's X.509 authorities", () => {
    const cert = new X509Certificate(pem)
    const jwk = cert.publicKey.export({ format: 'jwk' })
    const bundle = JSON.stringify({
      keys: [{ ...jwk, use: 'x509-svid', x5c: [cert.raw.toString('base64')] }],
      spiffe_sequence: 3,
    })
    const out = trustBundlePem(bundle)
    assert.equal(new X509Certificate(out).fingerprint256, cert.fingerprint256)
  })

  it('refuses a file that holds no authority, rather than trusting nothing', () => {
    assert.throws(() => trustBundlePem('not a certificate'), /no PEM certificate/)
    assert.throws(
      () => trustBundlePem('{"keys":[],"spiffe_sequence":1}'),
      /no X\.509 authority|bundle/,
    )
    assert.throws(() =>
      trustBundlePem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'),
    )
  })
})
