import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { createInventory } from '../../src/inventory/index.js'
import { createRevocationList } from '../../src/lifecycle/revocations.js'
import { attributeUsage, createAuthzService, type AuthzService } from '../../src/policy/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { agent, basePolicies, outsider, reporter, seed, web } from './fixtures.js'

for (const backend of testBackends()) {
  describe(`${backend.name}: Cedar authorizer`, () => {
    let store: Store
    let authz: AuthzService
    const clock = createFixedClock('2026-11-23T10:04:00Z')
    const events = createMemoryEventSink()

    before(async () => {
      store = await backend.open()
      await seed(store, clock)
      authz = createAuthzService({ store, clock, events, refreshMs: 1000 })
      for (const [name, body] of Object.entries(basePolicies)) {
        await authz.policies.add({ name, body, activate: true, createdBy: 'test' })
      }
    })
    after(() => store.close())

    it('allows through team membership and the resource hierarchy, naming the policy', async () => {
      const d = await authz.authorizer.authorize({
        principal: web,
        action: 'db:query',
        resource: 'db:payments/cards',
      })
      assert.equal(d.decision, 'allow')
      assert.deepEqual(d.determiningPolicies, ['payments-read@1#team-read'])
      assert.deepEqual(d.errors, [])
      assert.match(d.decisionId, /^[0-9a-f-]{36}$/)
      assert.equal(d.principal, web)
    })

    it('denies by default and when a forbid matches (owner attribute, resource attribute)', async () => {
      const none = await authz.authorizer.authorize({
        principal: outsider,
        action: 'read',
        resource: 'db:payments',
      })
      assert.equal(none.decision, 'deny')
      assert.deepEqual(none.determiningPolicies, [])
      // reporter is owned by alice, who is in payments: the team permit applies, the forbid wins.
      const forbidden = await authz.authorizer.authorize({
        principal: reporter,
        action: 'read',
        resource: 'db:payments/cards',
      })
      assert.equal(forbidden.decision, 'deny')
      assert.deepEqual(forbidden.determiningPolicies, ['payments-read@1#no-bronze-pci'])
    })

    it('uses the context: namespace from the SPIFFE ID wins over the caller', async () => {
      const d = await authz.authorizer.authorize({
        principal: web,
        action: 'connect',
        resource: 'host:web-01',
        context: { namespace: 'ops' },
      })
      assert.equal(d.decision, 'deny')
      assert.deepEqual(d.determiningPolicies, ['no-ssh-for-bots@1'])
    })

    it('decides on the delegation chain and the declared intent', async () => {
      const ask = (context: Record<string, unknown>) =>
        authz.authorizer.authorize({
          principal: reporter,
          action: 'read',
          resource: 's3:reports',
          context,
        })
      assert.equal((await ask({})).decision, 'deny')
      const ok = await ask({ delegationChain: [agent], intent: 'summarise the weekly report' })
      assert.equal(ok.decision, 'allow')
      assert.deepEqual(ok.determiningPolicies, ['reports-agent@1'])
      assert.equal(
        (await ask({ delegationChain: [agent], intent: 'delete things' })).decision,
        'deny',
      )
      assert.equal((await ask({ delegationChain: [agent] })).decision, 'deny')
      // Two hops are more than the policy allows.
      const twoHops = await ask({
        delegationChain: [agent, 'spiffe://example.org/ns/ai/sa/planner'],
        intent: 'report',
      })
      assert.equal(twoHops.decision, 'deny')
      // The agent itself, undelegated.
      const direct = await authz.authorizer.authorize({
        principal: agent,
        action: 'read',
        resource: 's3:reports',
      })
      assert.equal(direct.decision, 'allow')
    })

    it('refuses unknown context keys and malformed values', async () => {
      await assert.rejects(
        authz.authorizer.authorize({
          principal: web,
          action: 'read',
          resource: 'x',
          context: { trustDomain: 'evil.org' } as never,
        }),
        { code: 'TSR_VALIDATION' },
      )
      await assert.rejects(
        authz.authorizer.authorize({
          principal: web,
          action: 'read',
          resource: 'x',
          context: { selectors: 'k8s:ns:prod' } as never,
        }),
        { code: 'TSR_VALIDATION' },
      )
    })

    it('the deny-list wins over every policy, with the reason', async () => {
      const revocations = createRevocationList({ store, clock })
      await authz.policies.add({
        name: 'allow-all',
        body: 'permit (principal, action, resource);',
        activate: true,
      })
      clock.advance(1000)
      assert.equal(
        (await authz.authorizer.authorize({ principal: outsider, action: 'read', resource: 'x' }))
          .decision,
        'allow',
      )
      await revocations.add({ targetType: 'spiffe_id', value: outsider, reason: 'compromised' })
      clock.advance(1000)
      const d = await authz.authorizer.authorize({
        principal: outsider,
        action: 'read',
        resource: 'x',
      })
      assert.equal(d.decision, 'deny')
      assert.deepEqual(d.determiningPolicies, [])
      assert.equal(d.reason?.code, 'revoked')
      assert.match(d.reason!.message, /spiffe_id .* is on the deny-list: compromised/)
      // A revoked actor anywhere in the chain denies too.
      const viaRevoked = await authz.authorizer.authorize({
        principal: web,
        action: 'read',
        resource: 'x',
        context: { delegationChain: [outsider] },
      })
      assert.equal(viaRevoked.decision, 'deny')
      assert.equal(viaRevoked.reason?.code, 'revoked')
      await authz.policies.deactivate('allow-all')
      clock.advance(1000)
    })

    it('follows graph changes: a changed owner and attribute are seen after the refresh', async () => {
      const ask = () =>
        authz.authorizer.authorize({ principal: reporter, action: 'read', resource: 'db:payments' })
      // reporter (bronze, owned by alice in payments) may read the database (not pci).
      assert.equal((await ask()).decision, 'allow')
      await createInventory({ store, clock }).ingest([
        {
          type: 'identity',
          source: 'spire',
          ref: reporter,
          kind: 'workload',
          name: 'reporter',
          owner: 'platform',
          attributes: { tier: 'bronze' },
        },
      ])
      // Within refreshMs the cached entity still answers; after it, the new owner does.
      clock.advance(1000)
      const d = await ask()
      assert.equal(d.decision, 'deny')
      assert.deepEqual(d.determiningPolicies, [])
      // An attribute change: web turns bronze, and the pci forbid now applies to it.
      const cards = () =>
        authz.authorizer.authorize({
          principal: web,
          action: 'db:query',
          resource: 'db:payments/cards',
        })
      assert.equal((await cards()).decision, 'allow')
      await createInventory({ store, clock }).ingest([
        {
          type: 'identity',
          source: 'spire',
          ref: web,
          kind: 'workload',
          name: 'web',
          owner: 'payments',
          attributes: { tier: 'bronze', environment: 'prod', pci: true, replicas: 3 },
        },
      ])
      // invalidate() drops the cache at once, without waiting for the refresh.
      authz.authorizer.invalidate()
      const bronze = await cards()
      assert.equal(bronze.decision, 'deny')
      assert.deepEqual(bronze.determiningPolicies, ['payments-read@1#no-bronze-pci'])
      await createInventory({ store, clock }).ingest([
        {
          type: 'identity',
          source: 'spire',
          ref: web,
          kind: 'workload',
          name: 'web',
          owner: 'payments',
          attributes: { tier: 'gold', environment: 'prod', pci: true, replicas: 3 },
        },
      ])
      authz.authorizer.invalidate()
    })

    it('batches decisions and records each as an authz.decision event', async () => {
      await authz.authorizer.flush()
      const before = events.events.length
      const ds = await authz.authorizer.authorizeBatch(
        [
          { principal: web, action: 'db:query', resource: 'db:payments' },
          { principal: outsider, action: 'read', resource: 'db:payments' },
        ],
        { durable: true },
      )
      assert.deepEqual(
        ds.map((d) => d.decision),
        ['allow', 'deny'],
      )
      await authz.authorizer.flush()
      const recorded = events.events.slice(before).filter((e) => e.type === 'authz.decision')
      assert.equal(recorded.length, 2)
      assert.equal(recorded[0]!.actor, web)
      assert.equal(recorded[0]!.resource, 'db:payments')
      assert.equal(recorded[0]!.action, 'db:query')
      assert.equal(recorded[0]!.decision, 'allow')
      assert.equal(recorded[0]!.data?.decisionId, ds[0]!.decisionId)
      assert.deepEqual(recorded[0]!.data?.determiningPolicies, ['payments-read@1#team-read'])
      await assert.rejects(
        authz.authorizer.authorizeBatch([
          { principal: web, action: 'read', resource: 'x' },
          { principal: web, action: '', resource: 'x' },
        ]),
        { code: 'TSR_VALIDATION', message: /requests\[1\]/ },
      )
    })
  })
}

describe('attribute usage (what the engine is sent)', () => {
  it('collects the names policies read, and notices records used whole', () => {
    const u = attributeUsage([
      'permit (principal, action, resource) when { principal.attributes has tier && principal.attributes.tier == "gold" && context.hour < 6 };',
    ])
    assert.deepEqual([...u.names].sort(), ['attributes', 'hour', 'tier'])
    assert.equal(u.wholeContext, false)
    assert.equal(u.wholeRecords, false)
    const whole = attributeUsage([
      'permit (principal, action, resource) when { principal.attributes == {} };',
      'permit (principal, action, resource) when { context == {} };',
    ])
    assert.equal(whole.wholeRecords, true)
    assert.equal(whole.wholeContext, true)
  })
})
