import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { createFixedClock } from '../runtime/clock.js'
import { readCertificateExtensions } from '../spiffe/x509-ext.js'
import { validateX509Svid } from '../spiffe/x509-svid.js'
import type { Store } from '../store/store.js'
import { testBackends } from '../../test/support/stores.js'
import { createCertificateAuthority, type Ca, type CaEvent } from './ca.js'
import { createDiskKeyManager } from './key-manager.js'

const hour = 3600_000
const pk = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey

/** The SKID of the CA certificate that signed `leaf` (its AKID). */
function signerOf(leaf: Buffer): string {
  return readCertificateExtensions(leaf).authorityKeyId!.toString('hex')
}
function skidOf(cert: Buffer): string {
  return readCertificateExtensions(cert).subjectKeyId!.toString('hex')
}
async function leafSigner(ca: Ca): Promise<string> {
  const [svid] = await ca.signX509Svids([{ spiffeId: 'spiffe://example.org/w', publicKey: pk() }])
  return signerOf(svid!.certChain[0]!)
}

for (const backend of testBackends()) {
  describe(`CA rotation (${backend.name})`, () => {
    let store: Store
    before(async () => {
      store = await backend.open()
    })
    after(async () => {
      await store?.close()
    })

    it('prepares at 1/2 life (published before use), activates at 5/6, drops the old key at its expiry', async () => {
      const clock = createFixedClock('2026-03-01T00:00:00Z')
      const events: CaEvent[] = []
      const ca = await createCertificateAuthority({
        store,
        keyManager: createDiskKeyManager(randomBytes(32)),
        clock,
        trustDomain: 'example.org',
        onEvent: (e) => events.push(e),
      })
      const b0 = await ca.bundle()
      const first = skidOf(b0.x509Authorities[0]!)
      const firstJwt = b0.jwtAuthorities[0]!.kid
      assert.equal(await leafSigner(ca), first)

      clock.advance(11 * hour)
      await ca.tick()
      assert.equal((await ca.bundle()).sequence, b0.sequence, 'nothing due before half life')

      clock.advance(1 * hour + 20_000) // past 1/2 of the first key's life (it was backdated 10 s)
      await ca.tick()
      const b1 = await ca.bundle()
      assert.ok(b1.sequence > b0.sequence)
      assert.equal(b1.x509Authorities.length, 2, 'the prepared root is published')
      assert.equal(b1.jwtAuthorities.length, 2)
      const second = skidOf(b1.x509Authorities[1]!)
      assert.equal(await leafSigner(ca), first, 'the prepared key does not sign yet')
      const jwt1 = await ca.mintJwtSvid({ spiffeId: 'spiffe://example.org/w', audience: ['a'] })
      assert.equal(jwt1.kid, firstJwt)
      const slots = ca
        .keys()
        .filter((k) => k.purpose === 'x509_ca')
        .map((k) => k.slot)
      assert.deepEqual(slots.sort(), ['active', 'prepared'])

      clock.advance(8 * hour) // 20 h: past 5/6
      await ca.tick()
      const b2 = await ca.bundle()
      assert.equal(await leafSigner(ca), second, 'the prepared key is now active')
      assert.equal(b2.x509Authorities.length, 2, 'the old root stays until it expires')
      assert.notEqual(
        (await ca.mintJwtSvid({ spiffeId: 'spiffe://example.org/w', audience: ['a'] })).kid,
        firstJwt,
      )
      // A leaf signed by the old key before rotation still validates against the bundle.
      assert.equal(b2.sequence, b1.sequence, 'activation does not change the bundle')

      clock.advance(4 * hour + 1000) // past the first key's expiry
      await ca.tick()
      const b3 = await ca.bundle()
      assert.ok(b3.sequence > b2.sequence)
      const roots = b3.x509Authorities.map(skidOf)
      assert.ok(!roots.includes(first), 'the expired root left the bundle')
      // The second key is now at 1/2 of its own life: its successor is prepared in the same tick.
      assert.equal(roots[0], second)
      assert.equal(roots.length, 2)
      assert.deepEqual(
        events.map((e) => e.type),
        [
          ...['ca.key.activated', 'ca.key.activated'],
          ...['ca.key.prepared', 'ca.key.prepared'],
          ...['ca.key.activated', 'ca.key.activated'],
          ...['ca.key.prepared', 'ca.key.prepared'],
        ],
      )

      // A second CA on the same store (a restart, or another replica) sees the same keys.
      const again = await createCertificateAuthority({
        store,
        keyManager: createDiskKeyManager(randomBytes(32)),
        clock,
        trustDomain: 'example.org',
      }).catch((err: unknown) => err)
      assert.equal(
        (again as { code?: string }).code,
        'TSR_CA_KEY',
        'another KEK cannot open the keys',
      )
      await assert.rejects(
        createCertificateAuthority({
          store,
          keyManager: createDiskKeyManager(randomBytes(32)),
          clock,
          trustDomain: 'other.org',
        }),
        { code: 'TSR_CONFIG' },
      )
    })
  })

  describe(`CA emergency rotation (${backend.name})`, () => {
    let store: Store
    before(async () => {
      store = await backend.open()
    })
    after(async () => {
      await store?.close()
    })

    it('taints (still published, no longer signing, successor active), then revokes (unpublished)', async () => {
      const clock = createFixedClock('2026-03-01T00:00:00Z')
      const kek = randomBytes(32)
      const ca = await createCertificateAuthority({
        store,
        keyManager: createDiskKeyManager(kek),
        clock,
        trustDomain: 'example.org',
      })
      const [old] = await ca.signX509Svids([
        { spiffeId: 'spiffe://example.org/w', publicKey: pk() },
      ])
      const oldRoot = (await ca.bundle()).x509Authorities[0]!
      const s0 = (await ca.bundle()).sequence
      clock.advance(60_000)
      const { tainted, active } = await ca.taint({ purpose: 'x509_ca' })
      assert.notEqual(tainted, active)
      const b1 = await ca.bundle()
      assert.equal(b1.x509Authorities.length, 2, 'the tainted root is still in the bundle')
      assert.ok(b1.sequence > s0, 'the new root is a bundle change')
      assert.notEqual(await leafSigner(ca), skidOf(oldRoot), 'the tainted key no longer signs')
      // SVIDs signed before the taint still validate until the revoke: workloads have time to re-mint.
      assert.equal(
        validateX509Svid(old!.certChain, b1, clock.now()).spiffeId,
        'spiffe://example.org/w',
      )
      const view = ca.keys().find((k) => k.id === tainted)!
      assert.equal(view.tainted, true)
      assert.equal(view.slot, 'old')

      await assert.rejects(
        ca.revoke(active),
        { code: 'TSR_CONFLICT' },
        'an untainted key cannot be revoked',
      )
      await ca.revoke(tainted)
      const b2 = await ca.bundle()
      assert.ok(b2.sequence > b1.sequence)
      assert.equal(b2.x509Authorities.length, 1)
      assert.throws(() => validateX509Svid(old!.certChain, b2, clock.now()), {
        code: 'TSR_X509_SVID_INVALID',
      })
      // A restart keeps the state.
      const again = await createCertificateAuthority({
        store,
        keyManager: createDiskKeyManager(kek),
        clock,
        trustDomain: 'example.org',
      })
      assert.equal((await again.bundle()).sequence, b2.sequence)
      assert.equal(await leafSigner(again), skidOf(b2.x509Authorities[0]!))

      // The JWT key too.
      const before = await ca.mintJwtSvid({ spiffeId: 'spiffe://example.org/w', audience: ['a'] })
      const t = await ca.taint({ purpose: 'jwt' })
      assert.equal(t.tainted, before.kid)
      assert.equal((await ca.validateJwtSvid(before.token, 'a')).spiffeId, 'spiffe://example.org/w')
      await ca.revoke(t.tainted)
      await assert.rejects(ca.validateJwtSvid(before.token, 'a'), { code: 'TSR_JWT_SVID_INVALID' })
      await assert.rejects(ca.taint({ keyId: 'x509-none' }), { code: 'TSR_NOT_FOUND' })
    })
  })
}
