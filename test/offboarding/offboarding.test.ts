import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { isTesseraError } from '../../src/errors.js'
import { createInventory, type Inventory, type Observation } from '../../src/inventory/index.js'
import {
  createInventoryExecutors,
  createOffboarding,
  type StepExecutors,
  type StepTarget,
} from '../../src/lifecycle/offboarding/index.js'
import { createRevocationList } from '../../src/lifecycle/revocations.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'

const dana = 'dana@acme.example'
const eve = 'eve@acme.example'
const sources = ['aws:prod', 'k8s:prod', 'github:acme', 'vault:main'] as const

/**
 * Dana created 200 identities, 50 in each of four sources, in four ways: 50 she owns alone
 * (aws), 50 she created but her team owns (k8s, through a `created` edge), 50 she owns with Eve
 * as backup owner (github), and 50 AI agents she delegated to (vault, SPIFFE IDs). She also
 * committed a secret to a repository holding another secret.
 */
function world(): Observation[] {
  const out: Observation[] = [
    { type: 'owner', source: 'hr', ref: 'payments', ownerType: 'team', name: 'Payments' },
    {
      type: 'owner',
      source: 'hr',
      ref: dana,
      ownerType: 'person',
      name: 'Dana',
      team: 'payments',
      status: 'departed',
    },
    { type: 'owner', source: 'hr', ref: eve, ownerType: 'person', name: 'Eve', team: 'payments' },
    {
      type: 'identity',
      source: 'aws:prod',
      ref: 'someone-else',
      kind: 'iam_role',
      name: 'x',
      owner: eve,
      createdBy: eve,
    },
  ]
  for (let i = 0; i < 50; i++) {
    const n = String(i).padStart(2, '0')
    out.push({
      type: 'identity',
      source: 'aws:prod',
      ref: `arn:aws:iam::1:user/dana-${n}`,
      kind: 'iam_user',
      name: `dana-${n}`,
      owner: dana,
      createdBy: dana,
    })
    out.push({
      type: 'credential',
      source: 'aws:prod',
      ref: `aws-key:DANA${n}`,
      identity: `arn:aws:iam::1:user/dana-${n}`,
      credentialType: 'access_key',
    })
    out.push({
      type: 'identity',
      source: 'k8s:prod',
      ref: `k8s:sa-${n}`,
      kind: 'service_account',
      name: `sa-${n}`,
      owner: 'payments',
    })
    out.push({
      type: 'edge',
      source: 'k8s:prod',
      edgeType: 'created',
      from: { type: 'owner', ref: dana },
      to: { type: 'identity', ref: `k8s:sa-${n}` },
    })
    out.push({
      type: 'identity',
      source: 'github:acme',
      ref: `github:acme/app-${n}`,
      kind: 'ci_pipeline',
      name: `app-${n}`,
      owner: dana,
      createdBy: dana,
    })
    out.push({
      type: 'edge',
      source: 'github:acme',
      edgeType: 'owns',
      from: { type: 'owner', ref: eve },
      to: { type: 'identity', ref: `github:acme/app-${n}` },
    })
    out.push({
      type: 'identity',
      source: 'vault:main',
      ref: `spiffe://acme.example/agent/${n}`,
      kind: 'ai_agent',
      name: `agent-${n}`,
      owner: dana,
      createdBy: dana,
    })
    out.push({
      type: 'edge',
      source: 'vault:main',
      edgeType: 'delegated_to',
      from: { type: 'owner', ref: dana },
      to: { type: 'identity', ref: `spiffe://acme.example/agent/${n}` },
    })
  }
  out.push(
    {
      type: 'credential',
      source: 'scanner',
      ref: 'fp:dana-commit',
      credentialType: 'api_key',
      fingerprint: 'f1',
    },
    {
      type: 'location',
      source: 'scanner',
      credential: 'fp:dana-commit',
      locationType: 'git',
      repository: 'github.com/acme/pay',
      file: '.env',
      line: 1,
      commit: 'c1',
    },
    {
      type: 'edge',
      source: 'scanner',
      edgeType: 'created',
      from: { type: 'owner', ref: dana },
      to: { type: 'credential', ref: 'fp:dana-commit' },
    },
    {
      type: 'credential',
      source: 'scanner',
      ref: 'fp:other',
      credentialType: 'password',
      fingerprint: 'f2',
    },
    {
      type: 'location',
      source: 'scanner',
      credential: 'fp:other',
      locationType: 'git',
      repository: 'github.com/acme/pay',
      file: 'db.yml',
      line: 4,
      commit: 'c9',
    },
  )
  return out
}

/** Counts calls per step and can fail once at a chosen step, in front of the real executors. */
function counting(real: StepExecutors, failAt?: { seq: number; once: boolean }) {
  const calls = new Map<number, number>()
  let failed = false
  const wrap =
    (name: keyof StepExecutors) =>
    async (step: StepTarget): Promise<Record<string, unknown>> => {
      calls.set(step.seq, (calls.get(step.seq) ?? 0) + 1)
      if (failAt && step.seq === failAt.seq && !(failAt.once && failed)) {
        failed = true
        throw new Error('injected crash')
      }
      return real[name](step)
    }
  const executors: StepExecutors = {
    reassign: wrap('reassign'),
    rotate: wrap('rotate'),
    revoke: wrap('revoke'),
    disable: wrap('disable'),
  }
  return { executors, calls }
}

for (const backend of testBackends()) {
  describe(`offboarding (${backend.name})`, () => {
    let store: Store
    let inventory: Inventory
    const clock = createFixedClock('2026-11-20T12:00:00Z')
    const real = () =>
      createInventoryExecutors({
        store,
        inventory,
        revocations: createRevocationList({ store, clock }),
        clock,
      })

    before(async () => {
      store = await backend.open()
      inventory = createInventory({ store, clock })
      await inventory.ingest(world())
    })
    after(async () => store.close())

    it('lists all 200 identities across 4 sources and proposes the right plan', async () => {
      const offboarding = createOffboarding({
        store,
        executors: real(),
        events: createMemoryEventSink(),
        clock,
      })
      const plan = await offboarding.preview({ subjectType: 'person', subject: dana })
      assert.equal(plan.identities.length, 200)
      const bySource = new Map<string, number>()
      for (const i of plan.identities) bySource.set(i.source, (bySource.get(i.source) ?? 0) + 1)
      assert.deepEqual(
        Object.fromEntries(bySource),
        Object.fromEntries(sources.map((s) => [s, 50])),
      )
      assert.ok(!plan.identities.some((i) => i.ref === 'someone-else'))
      const count = (action: string, prefix: string) =>
        plan.steps.filter((s) => s.action === action && s.targetRef.startsWith(prefix)).length
      // Sole-owned: to her team. Co-owned: to Eve. Team-owned but created by her: untouched owner.
      assert.equal(count('reassign', 'arn:aws:iam::1:user/dana-'), 50)
      assert.ok(
        plan.steps
          .filter((s) => s.targetRef.startsWith('arn:aws'))
          .every((s) => s.action !== 'reassign' || s.params.to === 'payments'),
      )
      assert.equal(count('reassign', 'github:acme/app-'), 50)
      assert.ok(
        plan.steps
          .filter((s) => s.action === 'reassign' && s.targetRef.startsWith('github:'))
          .every((s) => s.params.to === eve),
      )
      assert.equal(count('reassign', 'k8s:'), 0)
      // Agents acting for her die: deny-listed and disabled.
      assert.equal(count('revoke', 'spiffe://acme.example/agent/'), 50)
      assert.equal(count('disable', 'spiffe://acme.example/agent/'), 50)
      // Keys of identities she created, the secret she committed, and what she could have seen.
      assert.equal(count('rotate', 'aws-key:DANA'), 50)
      assert.equal(count('rotate', 'fp:dana-commit'), 1)
      assert.equal(count('rotate', 'fp:other'), 1)
      assert.equal(plan.steps.length, 50 + 50 + 50 + 50 + 50 + 2)
      assert.match(
        plan.steps.find((s) => s.targetRef === 'fp:other')!.reason,
        /github.com\/acme\/pay/,
      )
      assert.deepEqual(
        plan.steps.map((s) => s.seq),
        plan.steps.map((_, i) => i + 1),
      )
      const sole = plan.identities.filter((i) => i.soleOwner).length
      assert.equal(sole, 100) // aws users and agents
    })

    it('an interrupted execution resumes without doing a step twice, and audits each step once', async () => {
      const events = createMemoryEventSink()
      const failing = counting(real(), { seq: 120, once: true })
      const first = createOffboarding({ store, executors: failing.executors, events, clock })
      const plan = await first.plan({ subjectType: 'person', subject: dana }, 'admin')
      assert.ok(plan.id)
      await assert.rejects(first.execute(plan.id!, 'admin'), (err) =>
        isTesseraError(err, 'TSR_OFFBOARDING_STEP'),
      )
      const stopped = (await first.get(plan.id!))!
      assert.equal(stopped.status, 'failed')
      assert.equal(stopped.steps.filter((s) => s.status === 'done').length, 119)
      assert.equal(stopped.steps[119]!.status, 'failed')
      assert.equal(events.events.length, 119)

      // "Crash" after step 150's effect but before its event: the event sink dies once.
      let dieAt: number | undefined = 150
      const flaky = {
        append: async (e: Parameters<typeof events.append>[0]) => {
          if (dieAt !== undefined && (e.data as { seq: number }).seq === dieAt) {
            dieAt = undefined
            throw new Error('process killed')
          }
          await events.append(e)
        },
        appendMany: events.appendMany,
      }
      const second = counting(real())
      // Planning again returns the unfinished plan: the CLI's `--execute` resumes it.
      const again = createOffboarding({ store, executors: second.executors, events: flaky, clock })
      assert.equal((await again.plan({ subjectType: 'person', subject: dana })).id, plan.id)
      await assert.rejects(again.execute(plan.id!, 'admin'), /process killed/)
      const third = counting(real())
      const resumed = await createOffboarding({
        store,
        executors: third.executors,
        events,
        clock,
      }).execute(plan.id!, 'admin')
      assert.equal(resumed.status, 'done')
      assert.ok(resumed.steps.every((s) => s.status === 'done'))

      // No step before the failure ran again; each later step ran exactly once overall.
      for (let seq = 1; seq <= plan.steps.length; seq++) {
        const total =
          (failing.calls.get(seq) ?? 0) + (second.calls.get(seq) ?? 0) + (third.calls.get(seq) ?? 0)
        const expected = seq === 120 ? 2 : 1 // 120 failed once (did nothing), then succeeded
        assert.equal(total, expected, `step ${seq}`)
      }
      assert.equal(third.calls.get(150), undefined)
      // One event per step, in order.
      const seqs = events.events.map((e) => (e.data as { seq: number }).seq)
      assert.deepEqual(
        seqs,
        plan.steps.map((s) => s.seq),
      )
      assert.ok(events.events.every((e) => e.type === 'offboarding.step' && e.actor === 'admin'))

      // Effects: reassigned, disabled, deny-listed, rotation requested.
      const user = (await inventory.getIdentity('arn:aws:iam::1:user/dana-07'))!
      assert.equal(user.owner, 'payments')
      const agent = (await inventory.getIdentity('spiffe://acme.example/agent/07'))!
      assert.equal(agent.state, 'disabled')
      const deny = await createRevocationList({ store, clock }).find({
        spiffeId: 'spiffe://acme.example/agent/07',
      })
      assert.ok(deny)
      const key = user.credentials.find((c) => c.ref === 'aws-key:DANA07')!
      assert.ok(key)
      const rotate = resumed.steps.find((s) => s.targetRef === 'aws-key:DANA07')!
      assert.equal(rotate.result?.status, 'requested')
      // Executing a finished plan again does nothing.
      const fourth = counting(real())
      await createOffboarding({ store, executors: fourth.executors, events, clock }).execute(
        plan.id!,
      )
      assert.equal(fourth.calls.size, 0)
    })

    it('a dissolved team hands its identities over, a decommissioned service dies', async () => {
      await inventory.ingest([
        {
          type: 'owner',
          source: 'hr',
          ref: 'old-team',
          ownerType: 'team',
          name: 'Old',
          team: 'payments',
        },
        {
          type: 'identity',
          source: 'aws:prod',
          ref: 'team-role',
          kind: 'iam_role',
          name: 'team-role',
          owner: 'old-team',
        },
        {
          type: 'identity',
          source: 'k8s:prod',
          ref: 'k8s:billing-sa',
          kind: 'service_account',
          name: 'billing',
          owner: eve,
          attributes: { service: 'billing' },
        },
        {
          type: 'identity',
          source: 'spire',
          ref: 'spiffe://acme.example/billing',
          kind: 'workload',
          name: 'billing',
          owner: eve,
        },
        {
          type: 'edge',
          source: 'spire',
          edgeType: 'runs_as',
          from: { type: 'identity', ref: 'spiffe://acme.example/billing' },
          to: { type: 'identity', ref: 'k8s:billing-sa' },
        },
        {
          type: 'credential',
          source: 'k8s:prod',
          ref: 'billing-token',
          identity: 'k8s:billing-sa',
          credentialType: 'token',
        },
      ])
      const offboarding = createOffboarding({
        store,
        executors: real(),
        events: createMemoryEventSink(),
        clock,
      })
      const team = await offboarding.preview({ subjectType: 'team', subject: 'old-team' })
      assert.deepEqual(
        team.steps.map((s) => [s.action, s.targetRef, s.params.to]),
        [['reassign', 'team-role', 'payments']],
      )
      const service = await offboarding.preview({ subjectType: 'service', subject: 'billing' })
      assert.deepEqual(
        service.steps.map((s) => [s.action, s.targetRef]),
        [
          ['revoke', 'billing-token'],
          ['revoke', 'spiffe://acme.example/billing'],
          ['disable', 'k8s:billing-sa'],
          ['disable', 'spiffe://acme.example/billing'],
        ],
      )
      const plan = await offboarding.plan({ subjectType: 'service', subject: 'billing' })
      const done = await offboarding.execute(plan.id!)
      assert.equal(done.status, 'done')
      assert.equal((await inventory.getIdentity('k8s:billing-sa'))!.state, 'disabled')
      const token = (await inventory.getIdentity('k8s:billing-sa'))!.credentials[0]!
      assert.equal(token.state, 'revoked')
      await assert.rejects(
        offboarding.preview({ subjectType: 'service', subject: 'nothing-here' }),
        (err) => isTesseraError(err, 'TSR_NOT_FOUND'),
      )
    })
  })
}
