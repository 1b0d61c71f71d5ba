import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { TesseraError } from '../errors.js'

/**
 * AES-256-GCM with the additional data bound, in one self-describing blob:
 * `version (1) | iv (12) | tag (16) | ciphertext`. The CA key manager and managed secrets both seal
 * through it, so there is one envelope format and one implementation.
 */
const ivBytes = 12
const tagBytes = 16
const version = 1

export function aesGcmSeal(key: Buffer, iv: Buffer, aad: string, plain: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(plain), cipher.final()])
  return Buffer.concat([Buffer.from([version]), iv, cipher.getAuthTag(), body])
}

export function aesGcmOpen(key: Buffer, aad: string, sealed: Buffer): Buffer {
  if (sealed.length < 1 + ivBytes + tagBytes || sealed[0] !== version) {
    throw new Error('unknown sealed format')
  }
  const iv = sealed.subarray(1, 1 + ivBytes)
  const tag = sealed.subarray(1 + ivBytes, 1 + ivBytes + tagBytes)
  const decipher = createDecipheriv('aes-256-gcm', key, iv)
  decipher.setAAD(Buffer.from(aad))
  decipher.setAuthTag(tag)
  return Buffer.concat([decipher.update(sealed.subarray(1 + ivBytes + tagBytes)), decipher.final()])
}

export const gcmIvBytes = ivBytes

/**
 * Envelope encryption of small secrets under the installation's key-encryption key: each value gets
 * its own random data key (AES-256-GCM), wrapped by the KEK. `context` names what the value is (a
 * managed secret's name and version) and is bound into both encryptions, so a sealed value cannot be
 * moved to another row. The result is one blob: `u16 wrapped length | wrapped data key | value`.
 */
export interface EnvelopeSealer {
  /** Identifies the KEK (a hash of it, never the key). */
  readonly kekId: string
  seal(context: string, plain: Buffer): Buffer
  /** Throws TSR_CONFIG when the blob was sealed under another KEK or was tampered with. */
  open(context: string, sealed: Uint8Array): Buffer
}

export function createEnvelopeSealer(
  kek: Buffer,
  kekId: string,
  deps: { random?: (n: number) => Buffer } = {},
): EnvelopeSealer {
  if (kek.length !== 32) {
    throw new TesseraError('TSR_CONFIG', 'the key-encryption key must be 32 bytes (256 bits)')
  }
  const random = deps.random ?? randomBytes
  const key = Buffer.from(kek)
  return {
    kekId,
    seal(context, plain) {
      const dataKey = random(32)
      try {
        const wrapped = aesGcmSeal(key, random(ivBytes), `tessera-envelope-dek:${context}`, dataKey)
        const body = aesGcmSeal(dataKey, random(ivBytes), `tessera-envelope:${context}`, plain)
        const len = Buffer.alloc(2)
        len.writeUInt16BE(wrapped.length)
        return Buffer.concat([len, wrapped, body])
      } finally {
        dataKey.fill(0)
      }
    },
    open(context, bytes) {
      let dataKey: Buffer | undefined
      // PGlite hands bytea back as a plain Uint8Array.
      const sealed = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      try {
        const len = sealed.readUInt16BE(0)
        dataKey = aesGcmOpen(key, `tessera-envelope-dek:${context}`, sealed.subarray(2, 2 + len))
        return aesGcmOpen(dataKey, `tessera-envelope:${context}`, sealed.subarray(2 + len))
      } catch (err) {
        throw new TesseraError(
          'TSR_CONFIG',
          `the sealed value of ${context} cannot be decrypted with key-encryption key ${kekId} (another KEK, or a tampered row)`,
          { cause: err },
        )
      } finally {
        dataKey?.fill(0)
      }
    },
  }
}
