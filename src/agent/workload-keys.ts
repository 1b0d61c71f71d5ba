import { generateKeyPair, type KeyObject } from 'node:crypto'

/** A workload key pair as the agent keeps it: encoded once, no KeyObject retained. */
export interface EncodedKeyPair {
  /** SubjectPublicKeyInfo DER, sent to the server for signing (the leaf carries it verbatim). */
  spki: Buffer
  /** Unencrypted PKCS#8 DER, served to the workload. */
  pkcs8: Buffer
}

// DER prefixes for P-256 (id-ecPublicKey, prime256v1), RFC 5480 / RFC 5915 / RFC 5208.
const algId = Buffer.from('301306072a8648ce3d020106082a8648ce3d030107', 'hex')
const spkiPrefix = Buffer.concat([Buffer.from('3059', 'hex'), algId, Buffer.from('034200', 'hex')])
// PrivateKeyInfo { version 0, algId, OCTET STRING { ECPrivateKey { 1, d, [1] publicKey } } }, as
// OpenSSL writes it (curve parameters only in the algorithm identifier).
const pkcs8Head = Buffer.concat([
  Buffer.from('308187020100', 'hex'),
  algId,
  Buffer.from('046d306b0201010420', 'hex'),
])
const pkcs8Mid = Buffer.from('a144034200', 'hex')

/**
 * Encodes a P-256 key pair from one JWK export of the private key. OpenSSL 3's `export({type:
 * 'pkcs8'})` and `export({type: 'spki'})` each cost several times a JWK export (an encoder lookup per
 * call), and a start storm does this once per workload on the event loop. Other key types fall back
 * to OpenSSL's encoders.
 */
export function encodeKeyPair(publicKey: KeyObject, privateKey: KeyObject): EncodedKeyPair {
  if (privateKey.asymmetricKeyType === 'ec') {
    const jwk = privateKey.export({ format: 'jwk' })
    if (jwk.crv === 'P-256' && jwk.d && jwk.x && jwk.y) {
      const d = Buffer.from(jwk.d, 'base64url')
      const x = Buffer.from(jwk.x, 'base64url')
      const y = Buffer.from(jwk.y, 'base64url')
      if (d.length === 32 && x.length === 32 && y.length === 32) {
        const point = Buffer.concat([Buffer.from([4]), x, y])
        return {
          spki: Buffer.concat([spkiPrefix, point]),
          pkcs8: Buffer.concat([pkcs8Head, d, pkcs8Mid, point]),
        }
      }
    }
  }
  return {
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    pkcs8: privateKey.export({ type: 'pkcs8', format: 'der' }),
  }
}

/**
 * A fresh P-256 key pair, generated on libuv's thread pool (the event loop keeps answering), then
 * encoded; the KeyObjects are dropped here, so their native memory is freed at the next GC.
 */
export function generateEncodedKeyPair(): Promise<EncodedKeyPair> {
  return new Promise((resolve, reject) =>
    generateKeyPair('ec', { namedCurve: 'P-256' }, (err, publicKey, privateKey) => {
      if (err) return reject(err)
      try {
        resolve(encodeKeyPair(publicKey, privateKey))
      } catch (e) {
        reject(e)
      }
    }),
  )
}
