import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import { derToP1363, p1363ToDer } from './ecdsa-signature.js'

const curves = [
  { name: 'P-256', size: 32, hash: 'sha256' },
  { name: 'P-384', size: 48, hash: 'sha384' },
  { name: 'P-521', size: 66, hash: 'sha512' },
] as const

test('DER and P1363 signatures convert both ways as Node encodes them', () => {
  for (const c of curves) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: c.name })
    for (let i = 0; i < 40; i++) {
      const msg = randomBytes(64)
      const der = sign(c.hash, msg, privateKey)
      const p1363 = derToP1363(der, c.size)
      assert.equal(p1363.length, 2 * c.size)
      assert.ok(verify(c.hash, msg, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p1363))
      assert.deepEqual(p1363ToDer(p1363, c.size), der)
      const theirs = sign(c.hash, msg, { key: privateKey, dsaEncoding: 'ieee-p1363' })
      assert.ok(verify(c.hash, msg, publicKey, p1363ToDer(theirs, c.size)!))
    }
  }
})

test('a P1363 signature of the wrong length is no signature', () => {
  assert.equal(p1363ToDer(Buffer.alloc(63), 32), undefined)
  assert.equal(p1363ToDer(Buffer.alloc(65), 32), undefined)
})

test('leading zeros and high bits give minimal DER INTEGERs', () => {
  const sig = Buffer.alloc(64)
  sig[31] = 1 // r = 1
  sig[32] = 0x80 // s has its top bit set
  const der = p1363ToDer(sig, 32)!
  assert.equal(der.toString('hex'), '3026' + '020101' + '022100' + sig.subarray(32).toString('hex'))
  assert.deepEqual(derToP1363(der, 32), sig)
})

test('fuzz: any r‖s round-trips; malformed DER throws, never mis-decodes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (bytes) => {
      const sig = Buffer.from(bytes)
      assert.deepEqual(derToP1363(p1363ToDer(sig, 32)!, 32), sig)
    }),
  )
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      try {
        const out = derToP1363(Buffer.from(bytes), 32)
        assert.equal(out.length, 64)
      } catch (e) {
        assert.ok(e instanceof Error)
      }
    }),
  )
})
