import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { runCli } from '../../src/cli/program.js'
import { createInventory } from '../../src/inventory/index.js'
import type { OffboardingPlan } from '../../src/lifecycle/offboarding/index.js'
import type { FindingView, PostureRunResult } from '../../src/posture/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import type { Store } from '../../src/store/index.js'
import { Capture, cliOn, tempDir } from '../cli/support.js'
import { testBackends } from '../support/stores.js'
import { now, postureGraph, refs } from './graph.js'

for (const backend of testBackends()) {
  describe(`findings and offboard through the CLI and REST (${backend.name})`, () => {
    let store: Store
    let app: FastifyInstance
    let url: string
    let admin: string
    let reader: string
    const clock = createFixedClock(now)

    before(async () => {
      store = await backend.open()
      await createInventory({ store, clock }).ingest(postureGraph())
      app = await buildApp({ store, inventory: createInventory({ store, clock }), clock })
      await app.listen({ host: '127.0.0.1', port: 0 })
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
      admin = (await createApiToken(store, { name: 'a', scopes: ['admin'] }, clock)).token
      reader = (await createApiToken(store, { name: 'r', scopes: ['read'] }, clock)).token
    })
    after(async () => {
      await app.close()
      await store.close()
    })

    const remote = async (token: string, ...args: string[]) => {
      const stdout = new Capture()
      const stderr = new Capture()
      const code = await runCli(['--server', url, ...args], {
        stdout,
        stderr,
        clock,
        env: { TESSERA_CONFIG: tempDir() + '/none.json', TESSERA_TOKEN: token },
      })
      return { code, stdout: stdout.text, stderr: stderr.text }
    }

    it('findings run evaluates every rule locally and exits 1 on findings', async () => {
      const cli = cliOn(store, clock)
      const run = await cli.run('--json', 'findings', 'run')
      assert.equal(run.code, 1, run.stderr)
      const result = JSON.parse(run.stdout) as PostureRunResult
      assert.equal(result.rules.length, 13)
      assert.equal(result.rules.find((r) => r.rule === 'admin-grant')!.found, 1)
      const table = await cli.run('findings', 'run', '--rule', 'orphaned')
      assert.match(table.stdout, /orphaned\s+medium\s+2/)
      const list = await cli.run('--json', 'findings', '--rule', 'admin-grant')
      assert.equal(list.code, 1)
      const page = JSON.parse(list.stdout) as { items: FindingView[] }
      assert.deepEqual(
        page.items.map((f) => f.subjectRef),
        [refs.admin],
      )
      const none = await cli.run('findings', '--rule', 'admin-grant', '--owner', 'nobody')
      assert.equal(none.code, 0)
      assert.equal(none.stdout, 'no findings\n')
      const bad = await cli.run('findings', '--severity', 'urgent')
      assert.equal(bad.code, 2)
    })

    it('REST lists, runs and accepts; the CLI does the same with --server', async () => {
      const list = await app.inject({
        method: 'GET',
        url: '/v1/findings?rule=orphaned',
        headers: { authorization: `Bearer ${reader}` },
      })
      assert.equal(list.statusCode, 200, list.body)
      const items = list.json<{ items: FindingView[] }>().items
      assert.equal(items.length, 2, list.body)
      const denied = await app.inject({
        method: 'POST',
        url: '/v1/findings/run',
        headers: { authorization: `Bearer ${reader}` },
        payload: {},
      })
      assert.equal(denied.statusCode, 403)
      const ran = await remote(admin, '--json', 'findings', 'run', '--rule', 'orphaned')
      assert.equal(ran.code, 1, ran.stderr)
      assert.equal((JSON.parse(ran.stdout) as PostureRunResult).rules[0]!.found, 2)
      const accepted = await remote(
        admin,
        '--json',
        'findings',
        'accept',
        items[0]!.id,
        '--reason',
        'legacy batch, replaced in Q1',
        '--until',
        '30d',
      )
      assert.equal(accepted.code, 0, accepted.stderr)
      const f = JSON.parse(accepted.stdout) as FindingView
      assert.equal(f.status, 'accepted')
      assert.equal(f.acceptedUntil, new Date(clock.now().getTime() + 30 * 86_400_000).toISOString())
      const open = await remote(reader, '--json', 'findings', '--rule', 'orphaned')
      assert.equal((JSON.parse(open.stdout) as { items: FindingView[] }).items.length, 1)
      const missing = await remote(
        admin,
        'findings',
        'accept',
        '00000000-0000-4000-8000-000000000000',
        '--reason',
        'x',
        '--until',
        '1d',
      )
      assert.equal(missing.code, 1)
    })

    it('offboard: dry run by default, --execute stores and runs the plan', async () => {
      const dry = await remote(admin, '--json', 'offboard', 'bob@acme.example')
      assert.equal(dry.code, 0, dry.stderr)
      const plan = JSON.parse(dry.stdout) as OffboardingPlan
      assert.equal(plan.id, undefined)
      assert.deepEqual(
        plan.steps.map((s) => [s.action, s.targetRef, s.params.to ?? null]),
        [
          ['reassign', refs.bobs, 'payments'],
          ['reassign', refs.bobsBacked, 'ann@acme.example'],
        ],
      )
      const human = await remote(admin, 'offboard', 'bob@acme.example', '--dry-run')
      assert.match(human.stdout, /person bob@acme.example: 2 identities .*dry run/)
      const done = await remote(admin, '--json', 'offboard', 'bob@acme.example', '--execute')
      assert.equal(done.code, 0, done.stderr)
      const executed = JSON.parse(done.stdout) as OffboardingPlan
      assert.equal(executed.status, 'done')
      const got = await app.inject({
        method: 'GET',
        url: `/v1/offboarding/${executed.id}`,
        headers: { authorization: `Bearer ${reader}` },
      })
      assert.equal(
        got.json<OffboardingPlan>().steps.every((s) => s.status === 'done'),
        true,
      )
      const identity = await createInventory({ store, clock }).getIdentity(refs.bobs)
      assert.equal(identity!.owner, 'payments')
      const usage = await remote(admin, 'offboard', 'x', '--dry-run', '--execute')
      assert.equal(usage.code, 2)
    })
  })
}
