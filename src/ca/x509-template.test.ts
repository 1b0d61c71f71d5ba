import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { describe, it } from 'node:test'
import { keyIdentifier, serialFrom, spkiDer } from './x509-template.js'

describe('x509 template helpers', () => {
  it('assembles the same SPKI DER as KeyObject.export for P-256, P-384 and RSA', () => {
    for (const key of [
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
      generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey,
      generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
      generateKeyPairSync('ed25519').publicKey,
    ]) {
      const expected = key.export({ type: 'spki', format: 'der' })
      assert.ok(spkiDer(key).equals(expected), key.asymmetricKeyType)
      assert.equal(keyIdentifier(expected).length, 20)
    }
  })

  it('makes positive 16-byte serials', () => {
    const s = serialFrom(Buffer.alloc(16, 0xff))
    assert.equal(s.hex, '7f' + 'ff'.repeat(15))
    assert.equal(s.der[0], 0x02)
    assert.equal(s.der[1], 16)
    assert.equal(serialFrom(Buffer.alloc(16, 0)).hex, '01' + '00'.repeat(15))
  })
})
