import type { PostureRule } from '../rule-types.js'
import { adminGrant } from './admin-grant.js'
import { certificateExpired, certificateExpiring } from './certificate-expiry.js'
import { ciProdWrite } from './ci-prod-write.js'
import { hardCodedSecret } from './hard-coded-secret.js'
import { identityUnused } from './identity-unused.js'
import { longTtl } from './long-ttl.js'
import { nonExpiringIntegrationToken } from './non-expiring-integration-token.js'
import { orphaned } from './orphaned.js'
import { sharedCredential } from './shared-credential.js'
import { staticKeyAge } from './static-key-age.js'
import { trustPathCrownJewel } from './trust-path.js'
import { unusedPermissions } from './unused-permissions.js'

/** Every built-in posture rule, in the order `findings run` evaluates them. */
export const builtinRules: readonly PostureRule[] = [
  certificateExpired,
  certificateExpiring,
  staticKeyAge,
  identityUnused,
  adminGrant,
  unusedPermissions,
  orphaned,
  hardCodedSecret,
  sharedCredential,
  longTtl,
  ciProdWrite,
  nonExpiringIntegrationToken,
  trustPathCrownJewel,
]

export {
  adminGrant,
  certificateExpired,
  certificateExpiring,
  ciProdWrite,
  hardCodedSecret,
  identityUnused,
  longTtl,
  nonExpiringIntegrationToken,
  orphaned,
  sharedCredential,
  staticKeyAge,
  trustPathCrownJewel,
  unusedPermissions,
}
