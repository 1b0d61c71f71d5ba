import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { createInventory } from '../../src/inventory/index.js'
import { createGovernance } from '../../src/policy/governance/governance.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { graph, ownersCsv } from './graph-fixture.js'
import { badEntries, gateOwnersCsv, gatePolicy } from './policy-fixture.js'

const scimJson = 'application/scim+json'

for (const backend of testBackends()) {
  describe(`govern REST API (${backend.name})`, () => {
    const clock = createFixedClock('2026-11-20T12:00:00Z')
    const events = createMemoryEventSink()
    let store: Store
    let app: FastifyInstance
    let admin: string
    let reader: string
    let scim: string
    before(async () => {
      store = await backend.open()
      const governance = createGovernance({ store, events, clock })
      app = await buildApp({
        store,
        clock,
        inventory: createInventory({ store, clock }),
        governance,
        events,
      })
      admin = (await createApiToken(store, { name: 'a', scopes: ['admin'] }, clock)).token
      reader = (await createApiToken(store, { name: 'r', scopes: ['read'] }, clock)).token
      scim = (await createApiToken(store, { name: 'idp', scopes: ['scim'] }, clock)).token
    })
    after(async () => {
      await app.close()
      await store.close()
    })

    const call = (
      method: string,
      url: string,
      token: string,
      payload?: unknown,
      contentType?: string,
    ) =>
      app.inject({
        method: method as 'GET',
        url,
        headers: {
          authorization: `Bearer ${token}`,
          ...(contentType ? { 'content-type': contentType } : {}),
        },
        ...(payload === undefined
          ? {}
          : { payload: contentType ? JSON.stringify(payload) : (payload as object) }),
      })

    describe('SCIM', () => {
      let userId: string
      let otherId: string
      it('creates a user (201) and refuses the same userName again with a SCIM error', async () => {
        const body = {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          userName: 'Zoe.Garcia@acme.example',
          name: { givenName: 'Zoe', familyName: 'Garcia' },
          emails: [{ value: 'zoe.garcia@acme.example', primary: true }],
          active: true,
        }
        const res = await call('POST', '/scim/v2/Users', scim, body, scimJson)
        assert.equal(res.statusCode, 201, res.body)
        assert.match(String(res.headers['content-type']), /application\/scim\+json/)
        const user = res.json<{ id: string; active: boolean; userName: string }>()
        userId = user.id
        assert.equal(user.active, true)
        const again = await call('POST', '/scim/v2/Users', scim, body, scimJson)
        assert.equal(again.statusCode, 409)
        assert.deepEqual(again.json(), {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
          status: '409',
          scimType: 'uniqueness',
          detail: again.json<{ detail: string }>().detail,
        })
        const other = await call(
          'POST',
          '/scim/v2/Users',
          scim,
          { userName: 'li.wong@acme.example', emails: [{ value: 'li.wong@acme.example' }] },
          'application/json',
        )
        assert.equal(other.statusCode, 201, other.body)
        otherId = other.json<{ id: string }>().id
      })

      it('finds a user by filter and by id', async () => {
        const list = await call(
          'GET',
          '/scim/v2/Users?filter=' + encodeURIComponent('userName eq "zoe.garcia@acme.example"'),
          scim,
        )
        assert.equal(list.statusCode, 200, list.body)
        const page = list.json<{ totalResults: number; Resources: Array<{ id: string }> }>()
        assert.equal(page.totalResults, 1)
        assert.equal(page.Resources[0]!.id, userId)
        assert.equal((await call('GET', `/scim/v2/Users/${userId}`, scim)).statusCode, 200)
        const bad = await call(
          'GET',
          '/scim/v2/Users?filter=' + encodeURIComponent('title co "x"'),
          scim,
        )
        assert.equal(bad.statusCode, 400)
        assert.equal(bad.json<{ scimType: string }>().scimType, 'invalidFilter')
        const missing = await call(
          'GET',
          '/scim/v2/Users/00000000-0000-0000-0000-000000000000',
          scim,
        )
        assert.equal(missing.statusCode, 404)
        assert.equal(missing.json<{ status: string }>().status, '404')
      })

      it('groups: members become team membership; PATCH adds and removes members', async () => {
        const res = await call(
          'POST',
          '/scim/v2/Groups',
          scim,
          { displayName: 'Data Platform', members: [{ value: userId }] },
          scimJson,
        )
        assert.equal(res.statusCode, 201, res.body)
        const group = res.json<{ id: string; members: Array<{ display: string }> }>()
        assert.deepEqual(
          group.members.map((m) => m.display),
          ['zoe.garcia@acme.example'],
        )
        const patched = await call(
          'PATCH',
          `/scim/v2/Groups/${group.id}`,
          scim,
          {
            schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
            Operations: [
              { op: 'Add', path: 'members', value: [{ value: otherId }] },
              { op: 'remove', path: `members[value eq "${userId}"]` },
            ],
          },
          scimJson,
        )
        assert.equal(patched.statusCode, 200, patched.body)
        assert.deepEqual(
          patched.json<{ members: Array<{ display: string }> }>().members.map((m) => m.display),
          ['li.wong@acme.example'],
        )
        const owner = await call('GET', '/v1/owners/li.wong%40acme.example', admin)
        assert.equal(owner.json<{ team: string }>().team, 'data-platform')
        const zoe = await call('GET', '/v1/owners/zoe.garcia%40acme.example', admin)
        assert.equal(zoe.json<{ team: string | null }>().team, null)
      })

      it('PATCH active:false marks the person departed; DELETE keeps them as departed', async () => {
        const res = await call(
          'PATCH',
          `/scim/v2/Users/${userId}`,
          scim,
          {
            schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
            Operations: [{ op: 'replace', value: { active: false } }],
          },
          scimJson,
        )
        assert.equal(res.statusCode, 200, res.body)
        assert.equal(res.json<{ active: boolean }>().active, false)
        const owner = await call('GET', `/v1/owners/${userId}`, admin)
        assert.equal(owner.json<{ status: string }>().status, 'departed')
        const del = await call('DELETE', `/scim/v2/Users/${otherId}`, scim)
        assert.equal(del.statusCode, 204)
        const after = await call('GET', `/scim/v2/Users/${otherId}`, scim)
        assert.equal(after.json<{ active: boolean }>().active, false)
        const badOp = await call(
          'PATCH',
          `/scim/v2/Users/${userId}`,
          scim,
          {
            schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
            Operations: [{ op: 'move', path: 'active' }],
          },
          scimJson,
        )
        assert.equal(badOp.statusCode, 400)
        assert.equal(badOp.json<{ scimType: string }>().scimType, 'invalidSyntax')
      })

      it('needs the scim scope, and a scim token reaches nothing else', async () => {
        const noToken = await app.inject({ method: 'GET', url: '/scim/v2/Users' })
        assert.equal(noToken.statusCode, 401)
        assert.equal(noToken.json<{ status: string }>().status, '401')
        assert.equal((await call('GET', '/scim/v2/Users', reader)).statusCode, 403)
        assert.equal((await call('GET', '/scim/v2/Users', admin)).statusCode, 200)
        assert.equal((await call('GET', '/v1/owners', scim)).statusCode, 403)
        assert.equal((await call('GET', '/v1/identities', scim)).statusCode, 403)
      })
    })

    describe('governance policy', () => {
      it('refuses an invalid policy with line, column and reason', async () => {
        const res = await call('POST', '/v1/policy', admin, {
          body: 'version: 1\nmaxTtl:\n  workload: soon\n',
        })
        assert.equal(res.statusCode, 422)
        const p = res.json<{
          code: string
          errors: Array<{ line: number; column: number; reason: string }>
        }>()
        assert.equal(p.code, 'TSR_POLICY_INVALID')
        assert.deepEqual([p.errors[0]!.line, p.errors[0]!.column], [3, 13])
        assert.equal(
          (await call('POST', '/v1/policy', reader, { body: gatePolicy })).statusCode,
          403,
        )
      })

      it('applies versions, keeps history and diffs them; events say so', async () => {
        const imported = await call('POST', '/v1/owners/import', admin, {
          content: gateOwnersCsv,
          format: 'csv',
        })
        assert.equal(imported.statusCode, 200, imported.body)
        const v1 = await call('POST', '/v1/policy', admin, { body: gatePolicy })
        assert.equal(v1.statusCode, 200, v1.body)
        assert.deepEqual(v1.json(), { version: 1, changed: true })
        assert.deepEqual((await call('POST', '/v1/policy', admin, { body: gatePolicy })).json(), {
          version: 1,
          changed: false,
        })
        const v2 = await call('POST', '/v1/policy', admin, {
          body: gatePolicy.replace('workload: 1h', 'workload: 2h'),
        })
        assert.equal(v2.json<{ version: number }>().version, 2)
        const diff = await call('GET', '/v1/policy/diff?from=1&to=2', reader)
        assert.deepEqual(diff.json<{ changes: unknown[] }>().changes, [
          { path: 'maxTtl.workload', change: 'changed', before: 3600, after: 7200 },
        ])
        const history = await call('GET', '/v1/policy/versions', reader)
        assert.deepEqual(
          history
            .json<{ items: Array<{ version: number; active: boolean }> }>()
            .items.map((v) => [v.version, v.active]),
          [
            [2, true],
            [1, false],
          ],
        )
        assert.equal(events.events.filter((e) => e.type === 'policy.changed').length, 2)
        await call('POST', '/v1/policy', admin, { body: gatePolicy })
      })

      it('accepts a registration that follows the policy', async () => {
        const ok = await call('POST', '/v1/entries', admin, {
          spiffeId: 'spiffe://example.org/ns/payments/sa/api',
          parentId: 'spiffe://example.org/spire/agent/x/1',
          selectors: ['k8s:ns:payments'],
          owner: 'payments-core',
        })
        assert.equal(ok.statusCode, 201, ok.body)
      })

      for (const { rule, entry } of badEntries) {
        it(`refuses a registration breaking ${rule} with the rule and a fix`, async () => {
          const res = await call('POST', '/v1/entries', admin, {
            parentId: 'spiffe://example.org/spire/agent/x/1',
            selectors: ['k8s:ns:payments'],
            ...entry,
          })
          assert.equal(res.statusCode, 403, res.body)
          const p = res.json<{ code: string; rule: string; fix: string; detail: string }>()
          assert.equal(p.code, 'TSR_POLICY_VIOLATION')
          assert.equal(p.rule, rule)
          assert.ok(p.fix.length > 0)
          assert.match(p.detail, new RegExp(rule.replace('.', '\\.')))
        })
      }

      it('dry-runs a stricter policy: only what newly violates', async () => {
        const res = await call('POST', '/v1/policy/test', reader, {
          body: gatePolicy.replace('workload: 1h', 'workload: 30m'),
        })
        assert.equal(res.statusCode, 200, res.body)
        const r = res.json<{
          against: number
          newViolations: Array<{ rule: string; subjectRef: string }>
        }>()
        assert.equal(r.against, 3)
        assert.deepEqual(
          r.newViolations.map((v) => [v.rule, v.subjectRef]),
          [['policy.max-ttl', 'spiffe://example.org/ns/payments/sa/api']],
        )
      })
    })

    describe('ownership and reports', () => {
      before(async () => {
        await call('POST', '/v1/owners/import', admin, { content: ownersCsv, format: 'csv' })
        const ingested = await call('POST', '/v1/observations', admin, { observations: graph })
        assert.equal(ingested.statusCode, 200, ingested.body)
      })

      it('assigns and shows ownership with evidence', async () => {
        const assign = await call('POST', '/v1/ownership', admin, {
          identity: 'arn:aws:iam::1:user/none',
          owner: 'sre',
          reason: 'on call',
        })
        assert.equal(assign.statusCode, 200, assign.body)
        const show = await call(
          'GET',
          '/v1/ownership?identity=' + encodeURIComponent('arn:aws:iam::1:user/none'),
          reader,
        )
        const o = show.json<{
          owner: { ref: string }
          confidence: number
          evidence: Array<{ step: string }>
          orphaned: boolean
        }>()
        assert.equal(o.owner.ref, 'sre')
        assert.equal(o.confidence, 1)
        assert.equal(o.evidence[0]!.step, 'explicit')
        assert.equal(o.orphaned, false)
      })

      it('serves the owner report and the compliance summary as JSON, CSV and HTML', async () => {
        const json = await call('GET', '/v1/reports/owner/sre', reader)
        assert.equal(json.statusCode, 200, json.body)
        const r = json.json<{ identities: Array<{ ref: string }> }>()
        assert.deepEqual(r.identities.map((i) => i.ref).sort(), [
          'arn:aws:iam::1:role/source',
          'arn:aws:iam::1:user/none',
          'spiffe://acme.example/ns/pay/sa/parent',
        ])
        const csv = await call('GET', '/v1/reports/owner/sre?format=csv', reader)
        assert.match(String(csv.headers['content-type']), /text\/csv/)
        assert.equal(csv.body.split('\r\n').filter(Boolean).length, 4)
        const html = await call('GET', '/v1/reports/compliance?format=html', reader)
        assert.match(String(html.headers['content-type']), /text\/html/)
        assert.match(html.body, /^<!doctype html>/)
        assert.doesNotMatch(html.body, /<script/i)
        const c = (await call('GET', '/v1/reports/compliance', reader)).json<{
          identities: { total: number }
          ownerCoverage: { orphaned: number }
        }>()
        assert.equal(c.identities.total, 14)
        assert.equal((await call('GET', '/v1/reports/owner/nobody', reader)).statusCode, 404)
      })
    })

    it('the SCIM sample file imports through the API', async () => {
      const content = await readFile('examples/owners/scim-users-groups.json', 'utf8')
      const res = await call('POST', '/v1/owners/import', admin, { content })
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.json<{ people: number }>().people, 3)
    })
  })
}
