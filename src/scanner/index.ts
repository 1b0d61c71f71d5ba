export { createDetector, type Detector, type TextSource } from './engine.js'
export { fingerprintSecret, loadOrCreateKeyFile, parseKey, redactedPreview } from './fingerprint.js'
export { parseIgnore, type IgnoreMatcher } from './ignore.js'
export { findingsToObservations, credentialRef } from './observations.js'
export { groupByFingerprint, toJson, toSarif, type FindingJson } from './report.js'
export { builtinRuleSets, loadRuleFile, resolveRules, validateRuleSet } from './rules.js'
export {
  listFiles,
  readBaseline,
  scanTarget,
  writeBaseline,
  type ScanOptions,
  type ScanResult,
} from './scan.js'
export { loadStoreKey, scannerKeySetting } from './store-key.js'
export * from './types.js'
