// `npm test`: the whole suite through node:test (process isolation, 2 files at a time), with node's
// own spec output and summary. One addition: a test file whose process was killed by a signal (an
// engine abort, not a failed assertion) is run once more on its own. Node 24's V8 can abort under
// PGlite's WebAssembly instantiate/free churn ("Check failed: jit_page…", nodejs/node#64500); that
// is not a result of the code under test. A failed assertion, a timeout or a non-zero exit is never
// retried, and every retry is reported.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const patterns =
  process.argv.slice(2).length > 0
    ? process.argv.slice(2)
    : ['src/**/*.test.ts', 'test/**/*.test.ts']
const node = process.execPath
const common = ['--import', 'tsx', '--test', '--test-concurrency=2']
const tap = join(tmpdir(), `tessera-test-${process.pid}.tap`)

const first = spawnSync(
  node,
  [
    ...common,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...patterns,
  ],
  { stdio: 'inherit' },
)
if (first.status === 0) {
  rmSync(tap, { force: true })
  process.exit(0)
}

/** Top-level failures of the TAP stream: their name and, for a file whose process died, the signal. */
function topLevelFailures(text) {
  const lines = text.split('\n')
  const out = []
  for (let i = 0; i < lines.length; i++) {
    const m = /^not ok \d+ - (.*)$/.exec(lines[i])
    if (!m) continue
    let signal
    for (let j = i + 1; j < lines.length && lines[j] !== '  ...'; j++) {
      const s = /^ {2}signal: '?([A-Z0-9]+)'?$/.exec(lines[j])
      if (s) signal = s[1]
    }
    out.push({ name: m[1], signal })
  }
  return out
}

const failures = existsSync(tap) ? topLevelFailures(readFileSync(tap, 'utf8')) : []
rmSync(tap, { force: true })
const crashed = failures.filter((f) => f.signal !== undefined && existsSync(f.name))
const real = failures.filter((f) => !crashed.includes(f))
if (failures.length === 0 || real.length > 0) process.exit(first.status ?? 1)

process.stdout.write(
  `\n# ${crashed.length} test file(s) killed by a signal (engine abort, not an assertion): running them once more\n` +
    crashed.map((f) => `#   ${f.name} (${f.signal})\n`).join(''),
)
const again = spawnSync(node, [...common, ...crashed.map((f) => f.name)], { stdio: 'inherit' })
process.exit(again.status ?? 1)
