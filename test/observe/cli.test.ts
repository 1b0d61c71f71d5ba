import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { runCli } from '../../src/cli/program.js'
import { createInventory } from '../../src/inventory/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import { openStore, type Store } from '../../src/store/index.js'
import { Capture, cliOn, tempDir } from '../cli/support.js'
import { bot, bucket, buildTimeline, intruder, t } from './timeline.js'

const example = (name: string) =>
  fileURLToPath(new URL(`../../examples/usage/${name}`, import.meta.url))

describe('tessera access, usage, reconcile and detect', () => {
  let store: Store
  let cli: ReturnType<typeof cliOn>
  let app: FastifyInstance
  let url: string
  let readToken: string
  let writeToken: string
  const clock = createFixedClock('2026-11-23T12:00:00Z')

  before(async () => {
    store = await openStore({ backend: 'pglite' })
    await buildTimeline(store)
    cli = cliOn(store, clock)
    app = await buildApp({ store, inventory: createInventory({ store, clock }), clock })
    await app.listen({ host: '127.0.0.1', port: 0 })
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    readToken = (await createApiToken(store, { name: 'r', scopes: ['read'] }, clock)).token
    writeToken = (await createApiToken(store, { name: 'w', scopes: ['write'] }, clock)).token
  })
  after(async () => {
    await app.close()
    await store.close()
  })

  const remote = async (token: string | undefined, ...args: string[]) => {
    const stdout = new Capture()
    const stderr = new Capture()
    const code = await runCli(['--server', url, ...args], {
      stdout,
      stderr,
      clock,
      env: { TESSERA_CONFIG: tempDir() + '/none.json', ...(token ? { TESSERA_TOKEN: token } : {}) },
    })
    return { code, stdout: stdout.text, stderr: stderr.text }
  }

  it('answers who-could, who-did and reach the same locally and through a server', async () => {
    const args = [
      ['access', 'who-could', bucket, '--at', t('10:04:01.500'), '--json'],
      ['access', 'who-did', bucket, '--from', t('10:04:01'), '--to', t('10:04:02'), '--json'],
      ['access', 'reach', bot, '--at', t('10:04:01.500'), '--json'],
    ]
    for (const a of args) {
      const local = await cli.run(...a)
      assert.equal(local.code, 0, local.stderr)
      const viaServer = await remote(readToken, ...a)
      assert.equal(viaServer.code, 0, viaServer.stderr)
      assert.deepEqual(JSON.parse(viaServer.stdout), JSON.parse(local.stdout), a.join(' '))
    }
    const who = JSON.parse((await cli.run(...args[0]!)).stdout)
    assert.equal(who.could.length, 3)
    const table = await cli.run('access', 'who-could', bucket, '--at', t('10:04:01.500'))
    assert.match(table.stdout, /report-bot/)
    assert.match(table.stdout, /reports-read v1/)
    assert.match(table.stdout, /no-credential/)
    const none = await cli.run('access', 'who-could', bucket, '--at', t('10:04:03'))
    assert.equal(none.code, 1, 'nobody could: exit 1')
    const bad = await cli.run('access', 'who-could', bucket, '--at', 'yesterday-ish')
    assert.equal(bad.code, 2)
    const anon = await remote(undefined, ...args[0]!)
    assert.equal(anon.code, 3)
    assert.match(anon.stderr, /TSR_AUTH_MISSING|authentication/)
  })

  it('imports usage logs idempotently, locally and through a server', async () => {
    const first = await cli.run(
      'usage',
      'import',
      example('cloudtrail.json'),
      '--format',
      'cloudtrail',
      '--json',
    )
    assert.equal(first.code, 0, first.stderr)
    const s = JSON.parse(first.stdout)
    assert.equal(s.records, 4)
    assert.equal(s.written, 3)
    const again = JSON.parse(
      (
        await remote(
          writeToken,
          'usage',
          'import',
          example('cloudtrail.json'),
          '--format',
          'cloudtrail',
          '--json',
        )
      ).stdout,
    )
    assert.equal(again.written, 0)
    assert.equal(again.unchanged, 3)
    const k8s = await cli.run(
      'usage',
      'import',
      example('k8s-audit.jsonl'),
      '--format',
      'k8s-audit',
      '--cluster',
      'prod-eu',
    )
    assert.equal(k8s.code, 0, k8s.stderr)
    assert.match(k8s.stdout, /3 accesses \(2 skipped/)
    const bad = tempDir() + '/bad.jsonl'
    writeFileSync(bad, '{"identity":"a"}\n')
    const withProblems = await cli.run('usage', 'import', bad, '--format', 'jsonl')
    assert.equal(withProblems.code, 1)
    assert.match(withProblems.stderr, /bad\.jsonl:1: resource is missing/)
    const readOnly = await remote(
      readToken,
      'usage',
      'import',
      example('usage.jsonl'),
      '--format',
      'jsonl',
    )
    assert.equal(readOnly.code, 1, 'importing needs the write scope (denied: exit 1)')
    assert.match(readOnly.stderr, /TSR_AUTH_SCOPE|scope/)
    const unused = await cli.run(
      'usage',
      'unused',
      '--since',
      '2026-11-23T00:00:00Z',
      '--include-newer-grants',
      '--json',
    )
    const items = JSON.parse(unused.stdout).items as { identityRef: string }[]
    assert.ok(
      items.some((i) => i.identityRef === intruder),
      JSON.stringify(items),
    )
    assert.equal(unused.code, 1)
  })

  it('reconciles a local store and refuses a server', async () => {
    const r = await cli.run('reconcile', '--json')
    const report = JSON.parse(r.stdout)
    assert.deepEqual(Object.keys(report.counts).sort(), [
      'drift-credential-unregistered',
      'drift-entry-without-workload',
      'drift-identity-gone-from-cloud',
      'drift-selector-mismatch',
      'drift-workload-unregistered',
    ])
    // The timeline issued an SVID for a SPIFFE ID with no entry, 2 h before "now".
    assert.equal(report.counts['drift-workload-unregistered'], 1)
    assert.equal(r.code, 1)
    const viaServer = await remote(readToken, 'reconcile')
    assert.equal(viaServer.code, 2, 'a configuration error')
    assert.match(viaServer.stderr, /store opened here/)
  })

  it('measures detection on the simulated estate and checks config files', async () => {
    const r = await cli.run('detect', 'simulate', '--json')
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout)
    assert.equal(out.incidentRecall, 1)
    assert.ok(out.precision > 0.9)
    const dir = tempDir()
    writeFileSync(
      dir + '/ok.yaml',
      'responders:\n  notify: { url: "https://hooks.example.com/x" }\nrules:\n  - { name: page, minScore: 0.7, responders: [notify] }\n',
    )
    assert.equal((await cli.run('detect', 'check', dir + '/ok.yaml')).code, 0)
    writeFileSync(dir + '/bad.yaml', 'rules:\n  - { minScore: 7, responders: [pager] }\n')
    const bad = await cli.run('detect', 'check', dir + '/bad.yaml')
    assert.equal(bad.code, 2, 'a configuration error')
    assert.match(bad.stderr, /minScore/)
  })
})
