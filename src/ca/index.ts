export * from './ca-types.js'
export {
  createCertificateAuthority,
  type Ca,
  type CaDeps,
  type CaEvent,
  type CaKeyPurpose,
  type CaKeySlot,
  type CaKeyView,
} from './ca.js'
export {
  createKeyManager,
  createDiskKeyManager,
  createMemoryKeyManager,
  kekIdOf,
  type KeyManager,
  type KeyManagerConfig,
  type SealedKey,
} from './key-manager.js'
export { resolveKeyManagerConfig, decodeKek, kekFileName, type KekSource } from './kek.js'
export { createIssuanceLog, type IssuanceLog, type IssuanceRecord } from './issuance-log.js'
export {
  loadUpstreamCa,
  parseUpstreamCa,
  pemCertificates,
  toPem,
  type UpstreamCa,
} from './upstream.js'
