import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { createFixedClock } from '../../runtime/clock.js'
import { byType, collect, make, memoryFiles } from '../testing/collect.js'
import { createCertificatesConnector } from './certificates-connector.js'

const dir = new URL('../../../examples/certificates/', import.meta.url).pathname
const read = (f: string) => readFileSync(dir + f)

describe('certificates connector on the sample files', () => {
  it('reads PEM chains, a SPIFFE SVID, DER, PKCS#12 and JKS from a directory', async () => {
    const r = await collect(
      make(
        createCertificatesConnector,
        { paths: dir, passwordEnv: 'P12_PASSWORD' },
        { env: { P12_PASSWORD: 'changeit-sample' } },
      ),
    )
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.invalid, [])
    const creds = byType(r.observations, 'credential')
    const bySubject = new Map(creds.map((c) => [String(c.attributes?.subject), c]))
    const leaf = bySubject.get('C=GB, O=Acme Corp, CN=payments.acme.example')!
    assert.equal(leaf.credentialType, 'certificate')
    assert.equal(leaf.issuer, 'C=GB, O=Acme Corp, CN=Acme Issuing CA 2')
    assert.deepEqual(leaf.attributes?.dns, ['payments.acme.example', 'api.payments.acme.example'])
    assert.deepEqual(leaf.attributes?.ips, ['10.40.12.15'])
    assert.equal(leaf.attributes?.serial, '04f1e2d3c4b5a69788')
    assert.deepEqual([leaf.attributes?.keyType, leaf.attributes?.keySize], ['rsa', 2048])
    assert.equal(leaf.attributes?.selfSigned, false)
    assert.match(leaf.fingerprint!, /^sha256:[0-9a-f]{64}$/)
    assert.equal(leaf.ref, `x509:${leaf.fingerprint!.slice(7)}`)
    assert.ok(Date.parse(leaf.expiresAt!) > Date.parse(leaf.createdAt!))

    const svid = creds.find(
      (c) => c.identity === 'spiffe://acme.example/ns/payments/sa/payments-api',
    )!
    assert.deepEqual([svid.attributes?.keyType, svid.attributes?.keySize], ['ec', 256])
    assert.deepEqual(svid.attributes?.spiffeIds, [
      'spiffe://acme.example/ns/payments/sa/payments-api',
    ])
    const workload = byType(r.observations, 'identity').find((i) => i.ref === svid.identity)!
    assert.equal(workload.kind, 'workload')

    const legacy = bySubject.get('CN=legacy-admin.corp.acme.example, O=Acme Corp')!
    assert.equal(legacy.attributes?.selfSigned, true)
    const root = bySubject.get('C=GB, O=Acme Corp, CN=Acme Root CA R2')!
    assert.deepEqual(
      [
        root.attributes?.keyType,
        root.attributes?.keySize,
        root.attributes?.ca,
        root.attributes?.selfSigned,
      ],
      ['ec', 384, true, true],
    )
    // The issuing CA is in the chain file, the PKCS#12 and the keystore: one credential, three locations.
    const issuing = bySubject.get('C=GB, O=Acme Corp, CN=Acme Issuing CA 2')!
    const locs = byType(r.observations, 'location').filter((l) => l.credential === issuing.ref)
    assert.deepEqual(locs.map((l) => l.file!.slice(dir.length)).sort(), [
      'client.p12',
      'payments-chain.pem',
      'truststore.jks',
    ])
    const client = bySubject.get('O=Acme Corp, CN=billing-sync-client')!
    assert.deepEqual(client.attributes?.emails, ['billing-core@acme.example'])
    assert.equal(creds.length, 6)
  })

  it('marks certificates past their notAfter as expired (by the context clock)', async () => {
    const r = await collect(
      make(createCertificatesConnector, { paths: dir + 'payments-api-svid.pem' }),
      {
        clock: createFixedClock('2031-01-01T00:00:00Z'),
      },
    )
    assert.equal(byType(r.observations, 'credential')[0]!.state, 'expired')
  })

  it('reports a truncated PEM block by line, keeping the complete certificate before it', async () => {
    const text = read('payments-chain.pem').toString()
    const cut = text.slice(0, text.lastIndexOf('-----END'))
    const files = memoryFiles({ '/c/chain.pem': cut })
    const r = await collect(make(createCertificatesConnector, { paths: '/c/chain.pem' }), { files })
    assert.deepEqual(
      r.errors.map((e) => e.message),
      ['/c/chain.pem at (line 19): PEM block CERTIFICATE has no END line (file truncated?)'],
    )
    assert.equal(byType(r.observations, 'credential').length, 1)
  })

  it('reports a truncated DER file, a bad base64 block and junk with their positions', async () => {
    const der = read('legacy-admin.der')
    const files = memoryFiles({
      '/c/a.der': der.subarray(0, 500),
      '/c/b.pem': '-----BEGIN CERTIFICATE-----\nMII$$$\n-----END CERTIFICATE-----\n',
      '/c/c.crt': 'hello',
      '/c/d.pem': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    })
    const r = await collect(make(createCertificatesConnector, { paths: '/c' }), { files })
    assert.deepEqual(
      r.errors.map((e) => e.message),
      [
        `/c/a.der at (byte 500): truncated DER: declares ${der.length} bytes, the file has 500`,
        '/c/b.pem at (line 1): PEM block CERTIFICATE is not valid base64',
        '/c/c.crt at (byte 0): neither PEM, DER, PKCS#12 nor a Java keystore',
        '/c/d.pem at (line 1): not a valid X.509 certificate',
      ],
    )
  })

  it('PKCS#12: needs the password, and a wrong one is a clear error (real openssl)', async () => {
    const noPass = await collect(make(createCertificatesConnector, { paths: dir + 'client.p12' }))
    assert.match(
      noPass.errors[0]!.message,
      /client\.p12: PKCS#12 file needs a password \(option passwordEnv\)/,
    )
    const wrong = await collect(
      make(
        createCertificatesConnector,
        { paths: dir + 'client.p12', passwordEnv: 'P' },
        { env: { P: 'nope' } },
      ),
    )
    assert.match(wrong.errors[0]!.message, /client\.p12: PKCS#12: wrong password/)
    const missing = createCertificatesConnector({
      name: 'c',
      options: { paths: 'x', passwordEnv: 'UNSET_VAR' },
      baseDir: '/',
      env: {},
    })
    assert.deepEqual(!missing.ok && missing.problems, [
      'passwordEnv: environment variable UNSET_VAR is not set',
    ])
  })

  it('JKS: a truncated keystore keeps nothing it cannot trust and names the byte offset', async () => {
    const jks = read('truststore.jks')
    const files = memoryFiles({ '/c/t.jks': jks.subarray(0, 700) })
    const r = await collect(make(createCertificatesConnector, { paths: '/c/t.jks' }), { files })
    assert.match(
      r.errors[0]!.message,
      /^\/c\/t\.jks at \(byte \d+\): truncated keystore: certificate runs past the end/,
    )
  })
})
