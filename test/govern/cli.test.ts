import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { runCli } from '../../src/cli/program.js'
import { createInventory } from '../../src/inventory/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import type { Store } from '../../src/store/index.js'
import { Capture, cliOn, tempDir } from '../cli/support.js'
import { testBackends } from '../support/stores.js'
import { graph, ids } from './graph-fixture.js'
import { gatePolicy } from './policy-fixture.js'

for (const backend of testBackends()) {
  describe(`tessera owner|policy|report (${backend.name})`, () => {
    const clock = createFixedClock('2026-11-20T12:00:00Z')
    let store: Store
    let app: FastifyInstance
    let url: string
    let token: string
    let cli: ReturnType<typeof cliOn>
    const dir = tempDir()
    const file = (name: string, text: string) => {
      const p = join(dir, name)
      writeFileSync(p, text)
      return p
    }
    before(async () => {
      store = await backend.open()
      const inventory = createInventory({ store, clock })
      await inventory.ingest(graph)
      app = await buildApp({ store, clock, inventory })
      await app.listen({ host: '127.0.0.1', port: 0 })
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
      token = (await createApiToken(store, { name: 'a', scopes: ['admin'] }, clock)).token
      cli = cliOn(store, clock)
    })
    after(async () => {
      await app.close()
      await store.close()
    })
    const remote = async (...args: string[]) => {
      const stdout = new Capture()
      const stderr = new Capture()
      const code = await runCli(['--server', url, ...args], {
        stdout,
        stderr,
        clock,
        env: { TESSERA_TOKEN: token, TESSERA_CONFIG: join(dir, 'none.json') },
      })
      return { code, stdout: stdout.text, stderr: stderr.text }
    }

    it('owner import reads the CSV and SCIM samples', async () => {
      const csv = await cli.run('owner', 'import', 'examples/owners/owners.csv')
      assert.equal(csv.code, 0, csv.stderr)
      assert.match(csv.stdout, /imported 3 people \(1 departed\) and 2 teams/)
      const scim = await cli.run(
        '--json',
        'owner',
        'import',
        'examples/owners/scim-users-groups.json',
      )
      assert.equal(scim.code, 0, scim.stderr)
      assert.equal(JSON.parse(scim.stdout).people, 3)
      const list = await cli.run('--json', 'owner', 'list', '--status', 'departed')
      assert.deepEqual(
        JSON.parse(list.stdout).items.map((o: { ref: string }) => o.ref),
        ['amir.haddad@acme.example'],
      )
      assert.equal((await cli.run('owner', 'import', join(dir, 'missing.csv'))).code, 3)
    })

    it('owner show gives owner, evidence and confidence; orphans exit 1; assign fixes it', async () => {
      const shown = await cli.run('owner', 'show', ids.parent)
      assert.equal(shown.code, 0, shown.stderr)
      assert.match(shown.stdout, /owner: +sre \(unknown, unknown\)|owner: +sre/)
      assert.match(shown.stdout, /parent .*owner of parent identity arn:aws:iam::1:role\/source/)
      const orphan = await cli.run('--json', 'owner', 'show', ids.none)
      assert.equal(orphan.code, 1)
      assert.equal(JSON.parse(orphan.stdout).orphanReason, 'no-owner')
      const assigned = await remote(
        'owner',
        'assign',
        ids.none,
        'payments-core',
        '--reason',
        'cleanup',
      )
      assert.equal(assigned.code, 0, assigned.stderr)
      const now = await remote('--json', 'owner', 'show', ids.none)
      assert.equal(now.code, 0, now.stderr)
      assert.equal(JSON.parse(now.stdout).owner.ref, 'payments-core')
    })

    it('policy apply refuses an invalid file with file, line, column and reason (exit 2)', async () => {
      const bad = file(
        'bad.policy.yaml',
        'version: 1\nnaming:\n  workload:\n    pattern: "(unclosed"\n',
      )
      const r = await cli.run('policy', 'apply', bad)
      assert.equal(r.code, 2)
      assert.match(
        r.stderr,
        /bad\.policy\.yaml:4:14: naming\.workload\.pattern: invalid regular expression/,
      )
      assert.match(r.stderr, /TSR_POLICY_INVALID/)
    })

    it('policy apply, history and diff, locally and through the server', async () => {
      const p1 = file('tessera.policy.yaml', gatePolicy)
      const applied = await cli.run('policy', 'apply', p1)
      assert.equal(applied.code, 0, applied.stderr)
      assert.match(applied.stdout, /applied policy version 1/)
      const p2 = file('v2.policy.yaml', gatePolicy.replace('ci_pipeline: 10m', 'ci_pipeline: 5m'))
      const second = await remote('--json', 'policy', 'apply', p2)
      assert.deepEqual(JSON.parse(second.stdout), { version: 2, changed: true })
      const history = await remote('policy', 'history')
      assert.match(history.stdout, /^VERSION/)
      const diff = await cli.run('policy', 'diff', '1', '2')
      assert.equal(diff.stdout, '~ maxTtl.ci_pipeline: 600 -> 300\n')
    })

    it('entry create breaking the policy is refused with the rule (exit 1), locally and remotely', async () => {
      const args = [
        'entry',
        'create',
        '--spiffe-id',
        'spiffe://example.org/db',
        '--parent-id',
        'spiffe://example.org/spire/agent/x/1',
        '--selector',
        'k8s:ns:payments',
        '--owner',
        'payments-core',
      ]
      for (const run of [cli.run, remote]) {
        const r = await run(...args)
        assert.equal(r.code, 1, r.stdout + r.stderr)
        assert.match(
          r.stderr,
          /policy\.naming: workload name spiffe:\/\/example\.org\/db does not match/,
        )
        assert.match(r.stderr, /fix: name it to match/)
        assert.match(r.stderr, /TSR_POLICY_VIOLATION/)
      }
      const ok = await cli.run(
        'entry',
        'create',
        '--spiffe-id',
        'spiffe://example.org/ns/payments/sa/db',
        '--parent-id',
        'spiffe://example.org/spire/agent/x/1',
        '--selector',
        'k8s:ns:payments',
        '--owner',
        'payments-core',
      )
      assert.equal(ok.code, 0, ok.stderr)
    })

    it('policy test prints what would newly violate and exits 1', async () => {
      const stricter = file(
        'strict.policy.yaml',
        gatePolicy.replace(
          'required:\n  owner: true',
          'required:\n  owner: true\n  tags:\n    iam_role: [team]',
        ),
      )
      const r = await cli.run('--json', 'policy', 'test', stricter)
      assert.equal(r.code, 1, r.stderr)
      const result = JSON.parse(r.stdout)
      assert.equal(result.against, 2)
      assert.deepEqual(
        result.newViolations
          .map((v: { rule: string; subjectRef: string }) => `${v.rule} ${v.subjectRef}`)
          .sort(),
        [
          'policy.required-tags arn:aws:iam::1:role/created-by',
          'policy.required-tags arn:aws:iam::1:role/source',
        ],
      )
      const same = await remote(
        'policy',
        'test',
        file('same.policy.yaml', gatePolicy.replace('ci_pipeline: 10m', 'ci_pipeline: 5m')),
      )
      assert.equal(same.code, 0, same.stderr)
      assert.match(same.stdout, /^0 new violations, 0 resolved \(against active version 2\)/)
    })

    it('report owner and compliance in json, csv and html', async () => {
      const json = await cli.run('report', 'owner', 'sre')
      assert.equal(json.code, 0, json.stderr)
      assert.equal(JSON.parse(json.stdout).owner.ref, 'sre')
      const csv = await remote('report', 'owner', 'payments-core', '--format', 'csv')
      assert.equal(csv.code, 0, csv.stderr)
      assert.match(
        csv.stdout,
        /^identity,kind,source,owner,via,confidence,credentials,risk,severity,rule,subject,first_seen\r\n/,
      )
      const html = await remote('report', 'compliance', '--format', 'html')
      assert.match(html.stdout, /<h1>Compliance summary<\/h1>/)
      const local = await cli.run('report', 'compliance', '--format', 'csv')
      assert.match(local.stdout, /identities,total,13/)
      assert.equal((await cli.run('report', 'owner', 'nobody')).code, 1)
    })
  })
}
