import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { createInventory } from '../../src/inventory/index.js'
import { createAuthzService } from '../../src/policy/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { basePolicies, outsider, seed, web } from './fixtures.js'

for (const backend of testBackends()) {
  describe(`${backend.name}: authorization API`, () => {
    let store: Store
    let app: FastifyInstance
    let admin: string
    let decider: string
    const clock = createFixedClock('2026-11-23T10:04:00Z')
    const events = createMemoryEventSink()
    const auth = (token: string) => ({ authorization: `Bearer ${token}` })

    before(async () => {
      store = await backend.open()
      await seed(store, clock)
      app = await buildApp({
        store,
        inventory: createInventory({ store, clock }),
        clock,
        authz: createAuthzService({ store, clock, events }),
      })
      admin = (await createApiToken(store, { name: 'admin', scopes: ['admin'] }, clock)).token
      decider = (await createApiToken(store, { name: 'pep', scopes: ['authz'] }, clock)).token
    })
    after(async () => {
      await app.close()
      await store.close()
    })

    it('stores, refuses with located errors, and activates Cedar policies', async () => {
      const bad = await app.inject({
        method: 'POST',
        url: '/v1/authz/policies',
        headers: auth(admin),
        payload: {
          name: 'typo',
          body: 'permit (principal, action, resource)\nwhen { principal.kindd == "x" };',
          activate: true,
        },
      })
      assert.equal(bad.statusCode, 422, bad.body)
      const problem = bad.json()
      assert.equal(problem.code, 'TSR_POLICY_INVALID')
      assert.equal(problem.errors[0].line, 2)
      assert.equal(problem.errors[0].column, 8)
      assert.match(problem.errors[0].message, /kindd/)
      const unparsable = await app.inject({
        method: 'POST',
        url: '/v1/authz/policies',
        headers: auth(admin),
        payload: { name: 'broken', body: 'permit (principal, action, resource) when { x ;' },
      })
      assert.equal(unparsable.statusCode, 422)
      assert.equal(unparsable.json().errors[0].line, 1)
      for (const [name, body] of Object.entries(basePolicies)) {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/authz/policies',
          headers: auth(admin),
          payload: { name, body, activate: true },
        })
        assert.equal(res.statusCode, 201, res.body)
        assert.equal(res.json().active, true)
      }
      const v2 = await app.inject({
        method: 'POST',
        url: '/v1/authz/policies',
        headers: auth(admin),
        payload: {
          name: 'no-ssh-for-bots',
          body: 'forbid (principal, action, resource) when { false };',
        },
      })
      assert.equal(v2.json().version, 2)
      assert.equal(v2.json().active, false)
      const list = await app.inject({
        method: 'GET',
        url: '/v1/authz/policies',
        headers: auth(admin),
      })
      const versions = list
        .json()
        .items.filter((p: { name: string }) => p.name === 'no-ssh-for-bots')
      assert.deepEqual(
        versions.map((p: { version: number; active: boolean }) => [p.version, p.active]),
        [
          [1, true],
          [2, false],
        ],
      )
      const shown = await app.inject({
        method: 'GET',
        url: '/v1/authz/policies/no-ssh-for-bots',
        headers: auth(admin),
      })
      assert.equal(shown.json().version, 1, 'show gives the active version')
      const schema = await app.inject({
        method: 'GET',
        url: '/v1/authz/schema',
        headers: auth(admin),
      })
      assert.ok(
        schema.json().Tessera.entityTypes.Identity.shape.attributes.attributes.attributes.tier,
      )
      const validate = await app.inject({
        method: 'POST',
        url: '/v1/authz/policies/validate',
        headers: auth(admin),
        payload: { body: 'permit (principal, action == Tessera::Action::"fly", resource);' },
      })
      assert.equal(validate.json().ok, false)
    })

    it('answers decisions for a token with the authz scope only', async () => {
      const none = await app.inject({
        method: 'POST',
        url: '/v1/authorize',
        payload: { principal: web, action: 'db:query', resource: 'db:payments' },
      })
      assert.equal(none.statusCode, 401)
      const res = await app.inject({
        method: 'POST',
        url: '/v1/authorize',
        headers: auth(decider),
        payload: { principal: web, action: 'db:query', resource: 'db:payments' },
      })
      assert.equal(res.statusCode, 200, res.body)
      const d = res.json()
      assert.equal(d.decision, 'allow')
      assert.deepEqual(d.determiningPolicies, ['payments-read@1#team-read'])
      assert.match(d.decisionId, /^[0-9a-f-]{36}$/)
      // The event is in the sink when the answer is sent.
      const recorded = events.events.find((e) => e.data?.decisionId === d.decisionId)
      assert.equal(recorded?.type, 'authz.decision')
      assert.equal(recorded?.actor, web)
      // The authz scope reaches nothing else.
      const other = await app.inject({
        method: 'GET',
        url: '/v1/identities',
        headers: auth(decider),
      })
      assert.equal(other.statusCode, 403)
      const admin403 = await app.inject({
        method: 'GET',
        url: '/v1/authz/policies',
        headers: auth(decider),
      })
      assert.equal(admin403.statusCode, 403)
      const badContext = await app.inject({
        method: 'POST',
        url: '/v1/authorize',
        headers: auth(decider),
        payload: { principal: web, action: 'read', resource: 'x', context: { time: 'now' } },
      })
      assert.equal(badContext.statusCode, 400)
    })

    it('answers a batch in order', async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/authorize/batch',
        headers: auth(decider),
        payload: {
          requests: [
            { principal: web, action: 'db:query', resource: 'db:payments' },
            {
              principal: { type: 'spiffe_id', id: outsider },
              action: 'read',
              resource: 'db:payments',
            },
            {
              principal: { type: 'jwt_svid', token: 'a.b.c' },
              action: 'read',
              resource: 'db:payments',
            },
          ],
        },
      })
      assert.equal(res.statusCode, 200, res.body)
      const ds = res.json().decisions
      assert.deepEqual(
        ds.map((d: { decision: string }) => d.decision),
        ['allow', 'deny', 'deny'],
      )
      assert.equal(ds[2].reason.code, 'principal_invalid')
    })
  })
}
