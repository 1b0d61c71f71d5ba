import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { X509Certificate, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createInventory } from '../inventory/index.js'
import { createRevocationList } from '../lifecycle/revocations.js'
import { createFixedClock, systemClock } from '../runtime/clock.js'
import { buildApp } from '../server/app.js'
import type { Store } from '../store/store.js'
import { testBackends } from '../../test/support/stores.js'
import { createCertificateAuthority, type Ca } from './ca.js'
import { createCrlService, encodeCrl } from './crl.js'
import { createDiskKeyManager } from './key-manager.js'
import { distinguishedName } from './x509-template.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-crl-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function openssl(...args: string[]) {
  const r = spawnSync('openssl', args, { encoding: 'utf8' })
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') }
}

const pem = (der: Buffer) => new X509Certificate(der).toString()

for (const backend of testBackends()) {
  describe(`CRL (${backend.name})`, () => {
    let store: Store
    let ca: Ca
    let app: FastifyInstance
    const clock = systemClock

    before(async () => {
      store = await backend.open()
      ca = await createCertificateAuthority({
        store,
        keyManager: createDiskKeyManager(randomBytes(32)),
        clock,
        trustDomain: 'example.org',
      })
      app = await buildApp({ store, inventory: createInventory({ store, clock }), clock, ca })
    })
    after(async () => {
      await app.close()
      await store.close()
    })

    const issue = async (spiffeId: string) => {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const [svid] = await ca.signX509Svids([{ spiffeId, publicKey }], {
        agentId: randomUUID(),
      })
      return svid!
    }

    it('lists deny-listed serials and unexpired SVIDs of revoked SPIFFE IDs; openssl refuses exactly those leaves', async () => {
      const bySerial = await issue('spiffe://example.org/a')
      const bySpiffeId = await issue('spiffe://example.org/leaked')
      const good = await issue('spiffe://example.org/good')
      const revocations = createRevocationList({ store, clock })
      // Upper case with colons and a leading zero: the CRL holds the normalised serial.
      const colons = ('00' + bySerial.serial).toUpperCase().match(/../g)!.join(':')
      await revocations.add({ targetType: 'serial', value: colons })
      await revocations.add({ targetType: 'spiffe_id', value: 'spiffe://example.org/leaked' })

      const der = await app.inject({ method: 'GET', url: '/v1/crl' })
      assert.equal(der.statusCode, 200)
      assert.equal(der.headers['content-type'], 'application/pkix-crl')
      const crlDer = join(dir, `crl-${backend.name}.der`)
      writeFileSync(crlDer, der.rawPayload)
      const text = openssl('crl', '-inform', 'DER', '-in', crlDer, '-noout', '-text')
      assert.equal(text.code, 0, text.out)
      assert.match(text.out, /Version 2/)
      assert.match(text.out, /X509v3 Authority Key Identifier/)
      assert.match(text.out, /X509v3 CRL Number/)
      assert.match(text.out, /Next Update/)
      const listed = [...text.out.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) =>
        m[1]!.toLowerCase().replace(/^0+/, ''),
      )
      assert.deepEqual(
        listed.sort(),
        [bySerial.serial, bySpiffeId.serial].map((s) => s.replace(/^0+/, '')).sort(),
      )
      const issuer = new X509Certificate(ca.x509Authorities()[0]!).subject.split('\n')
      for (const part of issuer) assert.ok(text.out.includes(part.split('=')[1]!), part)

      const pemRes = await app.inject({ method: 'GET', url: '/v1/crl.pem' })
      assert.equal(pemRes.statusCode, 200)
      assert.match(pemRes.body, /^-----BEGIN X509 CRL-----\n/)
      const crlPem = join(dir, `crl-${backend.name}.pem`)
      writeFileSync(crlPem, pemRes.body)
      const bundle = join(dir, `bundle-${backend.name}.pem`)
      writeFileSync(bundle, ca.x509Authorities().map(pem).join(''))
      // The CRL's signature verifies against the CA certificate.
      const sig = openssl('crl', '-in', crlPem, '-CAfile', bundle, '-noout')
      assert.equal(sig.code, 0, sig.out)
      assert.match(sig.out, /verify OK/)

      const verify = (svid: { certChain: Buffer[] }, name: string) => {
        const leaf = join(dir, `${name}-${backend.name}.pem`)
        writeFileSync(leaf, pem(svid.certChain[0]!))
        return openssl('verify', '-crl_check', '-CAfile', bundle, '-CRLfile', crlPem, leaf)
      }
      const r1 = verify(bySerial, 'serial')
      assert.notEqual(r1.code, 0)
      assert.match(r1.out, /certificate revoked/)
      const r2 = verify(bySpiffeId, 'spiffe')
      assert.notEqual(r2.code, 0)
      assert.match(r2.out, /certificate revoked/)
      const r3 = verify(good, 'good')
      assert.equal(r3.code, 0, r3.out)
      assert.match(r3.out, /OK/)
    })

    it("lists a banned agent's own SVID and every unexpired SVID it had signed, and nothing of other agents", async () => {
      const agentId = randomUUID()
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const [agentSvid] = await ca.signX509Svids(
        [{ spiffeId: `spiffe://example.org/spire/agent/join_token/${agentId}`, publicKey }],
        {},
      )
      await store.db
        .insertInto('agent')
        .values({
          id: agentId,
          spiffe_id: `spiffe://example.org/spire/agent/join_token/${agentId}`,
          attestation_type: 'join_token',
          selectors: '[]',
          serial: agentSvid!.serial,
          expires_at: new Date(Date.now() + 3600_000).toISOString(),
        })
        .execute()
      const [served] = await ca.signX509Svids(
        [{ spiffeId: 'spiffe://example.org/served', publicKey }],
        {
          agentId,
        },
      )
      const other = await issue('spiffe://example.org/served-elsewhere')
      const crls = createCrlService({ store, ca, clock, cacheMs: 0 })
      const before = (await crls.revokedSerials()).map((r) => r.serial)
      assert.ok(!before.includes(served!.serial))
      await createRevocationList({ store, clock }).add({ targetType: 'agent', value: agentId })
      const after = (await crls.revokedSerials()).map((r) => r.serial)
      const norm = (s: string) => s.replace(/^0+/, '')
      assert.ok(after.map(norm).includes(norm(served!.serial)), 'the workload SVID it signed')
      assert.ok(after.map(norm).includes(norm(agentSvid!.serial)), 'its own SVID')
      assert.ok(!after.map(norm).includes(norm(other.serial)), "another agent's SVID")
    })

    it('gives one CRL per published CA key, and `keyId` picks one; an unknown key is a 404', async () => {
      const crls = await createCrlService({ store, ca, clock }).build()
      assert.equal(crls.length, ca.crlIssuers().length)
      const active = ca.keys().find((k) => k.purpose === 'x509_ca' && k.slot === 'active')!
      assert.equal(crls[0]!.keyId, active.id)
      const one = await app.inject({ method: 'GET', url: `/v1/crl?keyId=${active.id}` })
      assert.equal(one.statusCode, 200)
      const none = await app.inject({ method: 'GET', url: '/v1/crl?keyId=x509-nope' })
      assert.equal(none.statusCode, 404)
      assert.equal(none.json().code, 'TSR_NOT_FOUND')
    })

    it('reuses a built CRL for a second, then shows a new deny-list entry; a tainted key still signs its own CRL', async () => {
      const fixed = createFixedClock(new Date())
      const service = createCrlService({ store, ca, clock: fixed })
      const first = await service.build()
      const leaf = await issue('spiffe://example.org/later')
      await createRevocationList({ store, clock }).add({ targetType: 'serial', value: leaf.serial })
      assert.equal(await service.build(), first)
      fixed.advance(1000)
      const second = await service.build()
      assert.notEqual(second, first)
      const serials = (await service.revokedSerials()).map((r) => r.serial)
      assert.ok(serials.includes(leaf.serial.replace(/^0+/, '')))

      // After a taint the old key stays published: both keys' CRLs are served, and a leaf the
      // tainted key signed is refused against the PEM set.
      await ca.taint({ purpose: 'x509_ca' })
      const pemRes = await app.inject({ method: 'GET', url: '/v1/crl.pem' })
      assert.equal(pemRes.body.match(/BEGIN X509 CRL/g)?.length, 2)
      const crlPem = join(dir, `crl2-${backend.name}.pem`)
      writeFileSync(crlPem, pemRes.body)
      const bundle = join(dir, `bundle2-${backend.name}.pem`)
      writeFileSync(bundle, ca.x509Authorities().map(pem).join(''))
      const file = join(dir, `later-${backend.name}.pem`)
      writeFileSync(file, pem(leaf.certChain[0]!))
      const r = openssl('verify', '-crl_check', '-CAfile', bundle, '-CRLfile', crlPem, file)
      assert.notEqual(r.code, 0)
      assert.match(r.out, /certificate revoked/)
    })
  })
}

describe('encodeCrl', () => {
  it('encodes an empty CRL without a revokedCertificates field, which openssl reads', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const der = encodeCrl({
      issuerName: distinguishedName('Tessera', 'Test CA'),
      thisUpdate: new Date('2026-11-23T10:00:00Z'),
      nextUpdate: new Date('2051-01-01T00:00:00Z'),
      crlNumber: 7,
      revoked: [],
      sign: (tbs) => sign('sha256', tbs, privateKey),
    })
    const file = join(dir, 'empty.der')
    writeFileSync(file, der)
    const text = openssl('crl', '-inform', 'DER', '-in', file, '-noout', '-text')
    assert.equal(text.code, 0, text.out)
    assert.match(text.out, /No Revoked Certificates/)
    assert.match(text.out, /Next Update: Jan {2}1 00:00:00 2051 GMT/) // GeneralizedTime from 2050
    assert.match(text.out, /CRL Number: \n?\s*7/)
  })
})
