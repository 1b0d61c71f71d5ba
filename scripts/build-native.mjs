// Builds the peer-credentials addon (native/) with node-gyp at install time. A missing compiler must
// not break `npm ci`: the failure is reported here as a warning, and `tessera agent` refuses to start
// with a clear message (TSR_AGENT_NATIVE) when the addon is absent.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const nativeDir = join(root, 'native')
const require = createRequire(import.meta.url)

if (process.env.TESSERA_SKIP_NATIVE === '1') {
  console.warn('tessera: TESSERA_SKIP_NATIVE=1, not building the peer-credentials addon')
  process.exit(0)
}

let gyp
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js')
} catch {
  console.warn('tessera: node-gyp is not installed; the agent will not start (addon missing)')
  process.exit(0)
}

// N-API is ABI-stable, so any Node's headers do. Prefer headers already on disk (no download):
// an explicit nodedir, then the running Node's install prefix.
const args = [gyp, 'rebuild']
const prefix = join(dirname(process.execPath), '..')
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`)
}
const res = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: 'inherit' })
if (res.status !== 0) {
  console.warn(
    'tessera: could not build the peer-credentials addon (native/); `npm ci` goes on, but ' +
      '`tessera agent` needs it: install a C++ compiler, python3 and make, then run `npm rebuild tessera` ' +
      'or `node scripts/build-native.mjs`.',
  )
}
process.exit(0)
