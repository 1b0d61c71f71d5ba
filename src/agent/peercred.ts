import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { TesseraError } from '../errors.js'
import type { PeerCredentials } from '../workload-api/backend.js'

/** Where node-gyp puts the addon (native/binding.gyp); same relative path from src/ and dist/. */
export const peerCredAddonPath = fileURLToPath(
  new URL('../../native/build/Release/peercred.node', import.meta.url),
)

let loaded: ((fd: number) => PeerCredentials) | undefined

/**
 * The SO_PEERCRED reader from the native addon. Throws TSR_AGENT_NATIVE with what to do when the
 * addon was not built (no compiler at install time).
 */
export function loadPeerCredentials(path = peerCredAddonPath): (fd: number) => PeerCredentials {
  if (loaded !== undefined && path === peerCredAddonPath) return loaded
  if (!existsSync(path)) {
    throw new TesseraError(
      'TSR_AGENT_NATIVE',
      `the peer-credentials addon is not built (${path} missing): install a C++ compiler, python3 and make, then run \`node scripts/build-native.mjs\``,
    )
  }
  let mod: { getPeerCred?: unknown }
  try {
    mod = createRequire(import.meta.url)(path) as { getPeerCred?: unknown }
  } catch (err) {
    throw new TesseraError('TSR_AGENT_NATIVE', `cannot load the peer-credentials addon ${path}`, {
      cause: err,
    })
  }
  if (typeof mod.getPeerCred !== 'function') {
    throw new TesseraError('TSR_AGENT_NATIVE', `${path} does not export getPeerCred`)
  }
  const fn = mod.getPeerCred as (fd: number) => PeerCredentials
  if (path === peerCredAddonPath) loaded = fn
  return fn
}
