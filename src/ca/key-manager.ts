import { createHash, createPrivateKey, randomBytes, randomUUID, type KeyObject } from 'node:crypto'
import { TesseraError } from '../errors.js'
import { aesGcmOpen as decrypt, aesGcmSeal as encrypt, gcmIvBytes as ivBytes } from './envelope.js'

/**
 * The `KeyManager` seam (DESIGN §3): where CA private keys live. The CA asks it to seal a private
 * key into the bytes stored in `ca_key` and to unseal them again; it never writes key bytes itself.
 *
 * - `memory`: the key stays in this process; the row holds only an opaque handle. Keys die with the
 *   process (tests, throw-away in-memory stores).
 * - `disk`: envelope encryption. Each private key gets its own random 256-bit data key; the PKCS#8
 *   DER is encrypted with it (AES-256-GCM), and the data key is wrapped by the key-encryption key
 *   (KEK, AES-256-GCM). The row holds only ciphertexts and the KEK's id, never key bytes in the
 *   clear. Both encryptions bind the key id as additional data, so a row cannot be swapped for
 *   another's.
 */
export interface SealedKey {
  encryptedPrivateKey: Buffer
  wrappedDataKey: Buffer
  kekId: string
}

export interface KeyManager {
  readonly kind: 'memory' | 'disk'
  /** Identifies the key-encryption key (never the key itself). */
  readonly kekId: string
  seal(keyId: string, privateKey: KeyObject): SealedKey
  /** Throws `TSR_CA_KEY` when the key cannot be recovered (another KEK, tampered bytes). */
  unseal(keyId: string, sealed: SealedKey): KeyObject
}

export type KeyManagerConfig = { kind: 'memory' } | { kind: 'disk'; kek: Buffer }

export interface KeyManagerDeps {
  random?: (n: number) => Buffer
}

/** The registry: configuration picks the implementation. */
export function createKeyManager(config: KeyManagerConfig, deps: KeyManagerDeps = {}): KeyManager {
  switch (config.kind) {
    case 'memory':
      return createMemoryKeyManager()
    case 'disk':
      return createDiskKeyManager(config.kek, deps)
  }
}

export function createMemoryKeyManager(): KeyManager {
  const kekId = `memory:${randomUUID()}`
  const keys = new Map<string, KeyObject>()
  return {
    kind: 'memory',
    kekId,
    seal(keyId, privateKey) {
      keys.set(keyId, privateKey)
      return { encryptedPrivateKey: Buffer.alloc(0), wrappedDataKey: Buffer.alloc(0), kekId }
    },
    unseal(keyId, sealed) {
      const key = sealed.kekId === kekId ? keys.get(keyId) : undefined
      if (key === undefined) {
        throw new TesseraError(
          'TSR_CA_KEY',
          `the CA key ${keyId} was held in the memory of another process (key manager ${sealed.kekId}) and is gone`,
        )
      }
      return key
    },
  }
}

/** The KEK's public id: a hash of it, so rows say which KEK sealed them without revealing it. */
export function kekIdOf(kek: Buffer): string {
  return (
    'kek:' + createHash('sha256').update('tessera-kek-id\0').update(kek).digest('hex').slice(0, 16)
  )
}

export function createDiskKeyManager(kek: Buffer, deps: KeyManagerDeps = {}): KeyManager {
  if (kek.length !== 32) {
    throw new TesseraError('TSR_CONFIG', 'the key-encryption key must be 32 bytes (256 bits)')
  }
  const random = deps.random ?? randomBytes
  const kekCopy = Buffer.from(kek)
  const kekId = kekIdOf(kekCopy)
  return {
    kind: 'disk',
    kekId,
    seal(keyId, privateKey) {
      const dataKey = random(32)
      try {
        const der = privateKey.export({ type: 'pkcs8', format: 'der' })
        try {
          return {
            encryptedPrivateKey: encrypt(dataKey, random(ivBytes), `tessera-ca-key:${keyId}`, der),
            wrappedDataKey: encrypt(
              kekCopy,
              random(ivBytes),
              `tessera-dek:${keyId}:${kekId}`,
              dataKey,
            ),
            kekId,
          }
        } finally {
          der.fill(0)
        }
      } finally {
        dataKey.fill(0)
      }
    },
    unseal(keyId, sealed) {
      if (sealed.kekId !== kekId) {
        throw new TesseraError(
          'TSR_CA_KEY',
          `the CA key ${keyId} is sealed with ${sealed.kekId}, but this server's key-encryption key is ${kekId}: set TESSERA_KEK (or the KEK file) to the one the store was created with`,
        )
      }
      let dataKey: Buffer | undefined
      let der: Buffer | undefined
      try {
        dataKey = decrypt(kekCopy, `tessera-dek:${keyId}:${kekId}`, sealed.wrappedDataKey)
        der = decrypt(dataKey, `tessera-ca-key:${keyId}`, sealed.encryptedPrivateKey)
        return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
      } catch (err) {
        throw new TesseraError(
          'TSR_CA_KEY',
          `the CA key ${keyId} cannot be decrypted (tampered row or wrong key-encryption key)`,
          { cause: err },
        )
      } finally {
        dataKey?.fill(0)
        der?.fill(0)
      }
    },
  }
}
