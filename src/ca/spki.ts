import { createPublicKey, type KeyObject } from 'node:crypto'
import { TesseraError } from '../errors.js'
import { spkiDer } from './x509-template.js'

/**
 * A workload public key as the CA certifies it: its SubjectPublicKeyInfo DER, checked. Callers that
 * have the DER (the agent API receives it on the wire) pass it as is: turning it into a KeyObject and
 * back costs more than the signature (OpenSSL's decoders; measured in bench/issuance.ts). EC points
 * on P-256 and P-384 are checked to be on the curve here, in a few microseconds; other key types go
 * through `createPublicKey`.
 */

interface Curve {
  p: bigint
  b: bigint
  prefix: Buffer
  size: number
}

const curves: Curve[] = [
  {
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
    prefix: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
    size: 32,
  },
  {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
    prefix: Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'),
    size: 48,
  },
]

function bigFrom(b: Buffer): bigint {
  return BigInt('0x' + b.toString('hex'))
}

function onCurve(curve: Curve, point: Buffer): boolean {
  if (point.length !== 1 + 2 * curve.size || point[0] !== 0x04) return false
  const x = bigFrom(point.subarray(1, 1 + curve.size))
  const y = bigFrom(point.subarray(1 + curve.size))
  const { p, b } = curve
  if (x >= p || y >= p) return false
  // y² = x³ − 3x + b (mod p)
  const lhs = (y * y) % p
  const rhs = (((x * x) % p) * x - 3n * x + b) % p
  return lhs === (rhs + p) % p
}

const keyObjectCache = new WeakMap<KeyObject, Buffer>()

function invalid(message: string): TesseraError {
  return new TesseraError('TSR_VALIDATION', message)
}

/** The checked SPKI DER of a request's public key (a KeyObject or SPKI DER bytes). */
export function workloadSpki(publicKey: KeyObject | Uint8Array): Buffer {
  if (publicKey instanceof Uint8Array) {
    const der = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength)
    for (const curve of curves) {
      if (
        der.length === curve.prefix.length + 1 + 2 * curve.size &&
        der.subarray(0, curve.prefix.length).equals(curve.prefix)
      ) {
        if (!onCurve(curve, der.subarray(curve.prefix.length)))
          throw invalid('publicKey: the EC point is not on its curve')
        return der
      }
    }
    let key: KeyObject
    try {
      key = createPublicKey({ key: der, format: 'der', type: 'spki' })
    } catch {
      throw invalid('publicKey is not a SubjectPublicKeyInfo DER')
    }
    checkKeyObject(key)
    return der
  }
  checkKeyObject(publicKey)
  let der = keyObjectCache.get(publicKey)
  if (der === undefined) {
    der = spkiDer(publicKey)
    keyObjectCache.set(publicKey, der)
  }
  return der
}

function checkKeyObject(key: KeyObject): void {
  if ((key as { type?: string })?.type !== 'public') throw invalid('publicKey must be a public key')
  const t = key.asymmetricKeyType
  const d = key.asymmetricKeyDetails
  const ok =
    (t === 'ec' && (d?.namedCurve === 'prime256v1' || d?.namedCurve === 'secp384r1')) ||
    (t === 'rsa' && (d?.modulusLength ?? 0) >= 2048) ||
    t === 'ed25519'
  if (!ok) throw invalid('publicKey must be ECDSA P-256/P-384, RSA ≥ 2048 or Ed25519')
}
