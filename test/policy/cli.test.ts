import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createInventory } from '../../src/inventory/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import { openStore, type Store } from '../../src/store/index.js'
import { cliOn, tempDir } from '../cli/support.js'
import { agent, basePolicies, outsider, reporter, seed, web } from './fixtures.js'

describe('tessera authz', () => {
  let store: Store
  const clock = createFixedClock('2026-11-23T10:04:00Z')
  let cli: ReturnType<typeof cliOn>
  const dir = tempDir()
  const file = (name: string, text: string) => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }

  before(async () => {
    store = await openStore({ backend: 'pglite' })
    await seed(store, clock)
    cli = cliOn(store, clock)
  })
  after(() => store.close())

  it('policy add, list, show, activate and validate, with located errors', async () => {
    for (const [name, body] of Object.entries(basePolicies)) {
      const r = await cli.run(
        'authz',
        'policy',
        'add',
        name,
        file(`${name}.cedar`, body),
        '--activate',
      )
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, new RegExp(`stored ${name} version 1 \\(active\\)`))
    }
    const typo = file(
      'typo.cedar',
      'permit (principal, action, resource)\nwhen { resource.enviroment == "prod" };\n',
    )
    const bad = await cli.run('authz', 'policy', 'add', 'typo', typo, '--activate')
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /typo:2:8: .*enviroment/)
    const badJson = await cli.run('--json', 'authz', 'policy', 'validate', typo)
    assert.equal(badJson.code, 1)
    const problems = JSON.parse(badJson.stdout).problems
    assert.equal(problems[0].line, 2)
    // The refused activation left version 1 stored but inactive.
    const list = JSON.parse((await cli.run('--json', 'authz', 'policy', 'list')).stdout).items
    assert.deepEqual(
      list
        .filter((p: { name: string }) => p.name === 'typo')
        .map((p: { active: boolean }) => p.active),
      [false],
    )
    const table = await cli.run('authz', 'policy', 'list')
    assert.match(table.stdout, /NAME\s+VERSION\s+ACTIVE/)
    const shown = await cli.run('authz', 'policy', 'show', 'reports-agent')
    assert.match(shown.stdout, /^\/\/ reports-agent version 1 \(active\)/)
    const schema = await cli.run('authz', 'schema')
    assert.match(schema.stdout, /entity Identity/)
  })

  it('check: exit 0 when allowed, 1 when denied, JSON on request', async () => {
    const ok = await cli.run(
      'authz',
      'check',
      '--principal',
      web,
      '--action',
      'db:query',
      '--resource',
      'db:payments',
    )
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /^ALLOW /)
    assert.match(ok.stdout, /payments-read@1#team-read/)
    const no = await cli.run(
      '--json',
      'authz',
      'check',
      '--principal',
      reporter,
      '--action',
      'read',
      '--resource',
      's3:reports',
      '--context',
      JSON.stringify({ delegationChain: [agent], intent: 'delete everything' }),
    )
    assert.equal(no.code, 1)
    assert.equal(JSON.parse(no.stdout).decision, 'deny')
    const usage = await cli.run('authz', 'check', '--action', 'read', '--resource', 'x')
    assert.equal(usage.code, 2)
    const badContext = await cli.run(
      'authz',
      'check',
      '--principal',
      web,
      '--action',
      'read',
      '--resource',
      'x',
      '--context',
      '[1]',
    )
    assert.equal(badContext.code, 2)
  })

  it('test: a YAML file of cases, table and JSON, exit 1 on a mismatch, candidate policies', async () => {
    const cases = file(
      'cases.yaml',
      `cases:
  - name: web queries payments
    principal: ${web}
    action: db:query
    resource: db:payments/cards
    expect: allow
    policies: [payments-read@1#team-read]
  - name: bronze never reads pci
    principal: ${reporter}
    action: read
    resource: db:payments/cards
    expect: deny
  - name: agent on behalf of reporter, for a report
    principal: ${reporter}
    action: read
    resource: s3:reports
    context: { delegationChain: ["${agent}"], intent: weekly report }
    expect: allow
`,
    )
    const r = await cli.run('authz', 'test', cases)
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /3 passed, 0 failed/)
    const wrong = file(
      'wrong.json',
      JSON.stringify({
        cases: [
          {
            name: 'outsider',
            principal: outsider,
            action: 'read',
            resource: 'db:payments',
            expect: 'allow',
          },
        ],
      }),
    )
    const w = await cli.run('--json', 'authz', 'test', wrong)
    assert.equal(w.code, 1)
    const out = JSON.parse(w.stdout)
    assert.equal(out.failed, 1)
    assert.equal(out.cases[0].got, 'deny')
    // Candidate policies (not stored) decide instead of the active ones.
    file(
      'draft.cedar',
      'permit (principal, action == Tessera::Action::"read", resource == Tessera::Resource::"db:payments");',
    )
    const draft = file(
      'draft.yaml',
      `policies: [draft.cedar]
cases:
  - { name: outsider with the draft, principal: "${outsider}", action: read, resource: db:payments, expect: allow, policies: [draft@0] }
  - { name: web without the active set, principal: "${web}", action: db:query, resource: db:payments, expect: deny }
`,
    )
    const d = await cli.run('authz', 'test', draft)
    assert.equal(d.code, 0, d.stdout + d.stderr)
    const malformed = file(
      'bad.yaml',
      'cases: [{ principal: x, action: read, resource: y, expect: maybe }]',
    )
    assert.equal((await cli.run('authz', 'test', malformed)).code, 2)
  })

  it('works through a server with --server', async () => {
    const app: FastifyInstance = await buildApp({
      store,
      inventory: createInventory({ store, clock }),
      clock,
    })
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 })
      const token = (await createApiToken(store, { name: 'pep', scopes: ['authz'] }, clock)).token
      const { runCli } = await import('../../src/cli/program.js')
      const { Capture } = await import('../cli/support.js')
      const stdout = new Capture()
      const stderr = new Capture()
      const code = await runCli(
        [
          '--server',
          url,
          '--json',
          'authz',
          'check',
          '--principal',
          web,
          '--action',
          'db:query',
          '--resource',
          'db:payments',
        ],
        {
          stdout,
          stderr,
          env: { TESSERA_TOKEN: token, TESSERA_CONFIG: join(dir, 'none.json') },
          clock,
        },
      )
      assert.equal(code, 0, stderr.text)
      assert.equal(JSON.parse(stdout.text).decision, 'allow')
    } finally {
      await app.close()
    }
  })
})
