import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { jsonl, sampleLines, tempDir } from './support.js'

/**
 * The real `tessera` process (src/cli/main.ts through tsx): argv, exit codes, stdout/stderr and
 * signals as a shell sees them. Kept to a few spawns; behaviour in depth is in the in-process tests.
 */

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const cleanEnv = () => {
  const env = { ...process.env }
  for (const k of ['TESSERA_SERVER', 'TESSERA_TOKEN', 'TESSERA_DATABASE_URL', 'TESSERA_DEBUG'])
    delete env[k]
  return env
}

function tessera(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repoRoot,
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  let onLine: ((line: string) => void) | undefined
  const firstLine = new Promise<string>((resolve) => (onLine = resolve))
  child.stdout.on('data', (d) => {
    stdout += d
    if (stdout.includes('\n')) onLine?.(stdout.slice(0, stdout.indexOf('\n')))
  })
  child.stderr.on('data', (d) => (stderr += d))
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  )
  return { child, done, firstLine }
}

const run = (args: string[], env?: NodeJS.ProcessEnv) => tessera(args, env).done

describe('tessera (process)', () => {
  const dir = tempDir()
  const file = join(dir, 'sample.jsonl')
  const config = join(dir, 'config.json')
  // The server starts at once: creating an embedded store takes seconds, so let it overlap the
  // local tests.
  let server: ReturnType<typeof tessera>
  before(() => {
    writeFileSync(file, jsonl(sampleLines))
    server = tessera(['server', '--port', '0', '--json', '--data-dir', join(dir, 'server')], {
      TESSERA_CONFIG: config,
    })
  })
  after(() => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL')
  })

  it('prints help with the exit codes (0) and rejects usage errors (2) without a stack', async () => {
    const help = await run(['--help'], { TESSERA_CONFIG: config })
    assert.equal(help.code, 0)
    assert.match(help.stdout, /Exit codes:\n\s+0\s+ok/)
    const bad = await run(['inventory', 'list', '--kind', 'robot'], { TESSERA_CONFIG: config })
    assert.equal(bad.code, 2)
    assert.match(
      bad.stderr,
      /^error: option '--kind <kind>' argument 'robot' is invalid\. must be one of workload/m,
    )
    assert.doesNotMatch(bad.stderr, /\n\s+at /)
  })

  it('imports into a data dir: exit 1, bad lines on stderr, valid lines listed afterwards', async () => {
    const dataDir = join(dir, 'data')
    const imported = await run(['inventory', 'import', file, '--data-dir', dataDir], {
      TESSERA_CONFIG: config,
    })
    assert.equal(imported.code, 1, imported.stderr)
    assert.deepEqual(
      imported.stderr
        .split('\n')
        .filter((l) => l.startsWith('line '))
        .map((l) => l.split(':')[0]),
      ['line 4', 'line 5', 'line 6'],
    )
    assert.match(imported.stdout, /received 6, inserted 6/)
    const listed = await run(['inventory', 'list', '--json', '--data-dir', dataDir], {
      TESSERA_CONFIG: config,
    })
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(JSON.parse(listed.stdout).items.length, 2)
  })

  describe('against `tessera server`', () => {
    let url: string
    let admin: string
    before(async () => {
      const first = await Promise.race([
        server.firstLine,
        server.done.then((r) => Promise.reject(new Error(`server exited ${r.code}: ${r.stderr}`))),
      ])
      const banner = JSON.parse(first)
      url = banner.url
      admin = banner.adminToken
    })

    it('printed one JSON line {url, adminToken} on stdout', () => {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.match(admin, /^tsr_/)
    })

    it('imports and lists over the API with a token', async () => {
      const imported = await run(['inventory', 'import', file, '--server', url, '--json'], {
        TESSERA_CONFIG: config,
        TESSERA_TOKEN: admin,
      })
      assert.equal(imported.code, 1, imported.stderr)
      assert.equal(JSON.parse(imported.stdout).received, 6)
      const listed = await run(['--server', url, '--token', admin, 'inventory', 'list', '--json'], {
        TESSERA_CONFIG: config,
      })
      assert.equal(listed.code, 0, listed.stderr)
      assert.equal(JSON.parse(listed.stdout).items.length, 2)
    })

    it('shows by a ref with slashes, and exports, over the API', async () => {
      const env = { TESSERA_CONFIG: config, TESSERA_TOKEN: admin, TESSERA_SERVER: url }
      const shown = await run(['inventory', 'show', 'arn:aws:iam::1:user/ci', '--json'], env)
      assert.equal(shown.code, 0, shown.stderr)
      assert.equal(JSON.parse(shown.stdout).credentials[0].locations[0].line, 3)
      const exported = await run(['inventory', 'export'], env)
      assert.equal(exported.code, 0, exported.stderr)
      const types = exported.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).type)
      assert.deepEqual([...new Set(types)].sort(), [
        'credential',
        'edge',
        'identity',
        'location',
        'owner',
      ])
    })

    it('exits 3 without a token and 1 when the token lacks the scope', async () => {
      const missing = await run(['inventory', 'list', '--server', url], { TESSERA_CONFIG: config })
      assert.equal(missing.code, 3)
      assert.match(missing.stderr, /\(TSR_AUTH_MISSING\)/)
      const created = await run(
        ['api-token', 'create', '--name', 'reader', '--scope', 'read', '--server', url, '--json'],
        { TESSERA_CONFIG: config, TESSERA_TOKEN: admin },
      )
      assert.equal(created.code, 0, created.stderr)
      const reader = JSON.parse(created.stdout)
      const denied = await run(['inventory', 'import', file, '--server', url, '--json'], {
        TESSERA_CONFIG: config,
        TESSERA_TOKEN: reader.token,
      })
      assert.equal(denied.code, 1)
      assert.equal(
        JSON.parse(denied.stderr.trim().split('\n').at(-1)!).error.code,
        'TSR_AUTH_SCOPE',
      )
    })

    it('login checks the token, saves it 0600, and later commands use it', async () => {
      const refused = await run(
        ['login', '--server', url, '--token', 'tsr_0000000000000000_nope'],
        {
          TESSERA_CONFIG: config,
        },
      )
      assert.equal(refused.code, 3)
      assert.throws(() => statSync(config))
      const login = await run(['login', '--server', url, '--token', admin], {
        TESSERA_CONFIG: config,
      })
      assert.equal(login.code, 0, login.stderr)
      assert.equal(statSync(config).mode & 0o777, 0o600)
      const stats = await run(['inventory', 'stats', '--json'], { TESSERA_CONFIG: config })
      assert.equal(stats.code, 0, stats.stderr)
      assert.equal(JSON.parse(stats.stdout).identity, 2)
    })

    it('stops cleanly on SIGTERM, with its logs on stderr and never the token', async () => {
      server.child.kill('SIGTERM')
      const exit = await server.done
      assert.equal(exit.code, 0)
      assert.match(exit.stderr, /"msg":"tessera server listening"/)
      assert.ok(!exit.stderr.includes(admin))
      assert.equal(exit.stdout.trim().split('\n').length, 1)
    })
  })

  it('says it cannot reach a server that is down (exit 3)', async () => {
    const r = await run(['inventory', 'list', '--server', 'http://127.0.0.1:9'], {
      TESSERA_CONFIG: config,
    })
    assert.equal(r.code, 3)
    assert.match(
      r.stderr,
      /^error: cannot reach server at http:\/\/127\.0\.0\.1:9 .*\(TSR_CLIENT_HTTP\)$/m,
    )
  })
})
