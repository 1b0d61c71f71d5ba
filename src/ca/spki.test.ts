import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isTesseraError } from '../errors.js'
import { workloadSpki } from './spki.js'

describe('workload public keys', () => {
  it('takes SPKI DER as is for P-256 and P-384, and KeyObjects of every accepted type', () => {
    for (const key of [
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
      generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey,
      generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
      generateKeyPairSync('ed25519').publicKey,
    ]) {
      const der = key.export({ type: 'spki', format: 'der' })
      assert.ok(workloadSpki(der).equals(der))
      assert.ok(workloadSpki(key).equals(der))
    }
  })

  it('refuses points off the curve, weak or private keys, and garbage', () => {
    const der = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      type: 'spki',
      format: 'der',
    })
    const off = Buffer.from(der)
    off[off.length - 1]! ^= 1
    assert.throws(() => workloadSpki(off), /not on its curve/)
    assert.throws(
      () => workloadSpki(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey),
      { code: 'TSR_VALIDATION' },
    )
    assert.throws(
      () => workloadSpki(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
      { code: 'TSR_VALIDATION' },
    )
    assert.throws(
      () => workloadSpki(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey),
      { code: 'TSR_VALIDATION' },
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        try {
          workloadSpki(bytes)
        } catch (err) {
          assert.ok(isTesseraError(err, 'TSR_VALIDATION'), String(err))
        }
      }),
      { numRuns: 300 },
    )
  })
})
