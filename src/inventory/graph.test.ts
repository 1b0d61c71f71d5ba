import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { testBackends } from '../../test/support/stores.js'
import { isTesseraError } from '../errors.js'
import { createFixedClock } from '../runtime/clock.js'
import type { Store } from '../store/index.js'
import {
  createInventory,
  entityId,
  locationRef,
  type Graph,
  type Inventory,
  type Observation,
} from './index.js'

const A = 'arn:aws:iam::1:user/app'
const R = 'arn:aws:iam::1:role/writer'
const W = 'spiffe://acme/ns/pay/sa/worker'
const loc = {
  credential: 'aws-key:AKIA1',
  locationType: 'git',
  repository: 'acme/app',
  file: '.env',
  line: 3,
} as const

const chain: Observation[] = [
  { type: 'owner', source: 'scim', ref: 'alice', ownerType: 'person', name: 'Alice' },
  { type: 'identity', source: 'aws', ref: A, kind: 'iam_user', name: 'app', owner: 'alice' },
  { type: 'identity', source: 'aws', ref: R, kind: 'iam_role', name: 'writer' },
  { type: 'identity', source: 'k8s', ref: W, kind: 'workload', name: 'worker' },
  {
    type: 'resource',
    source: 'aws',
    ref: 'arn:aws:s3:::ledger',
    resourceType: 's3_bucket',
    name: 'ledger',
  },
  {
    type: 'credential',
    source: 'aws',
    ref: 'aws-key:AKIA1',
    identity: A,
    credentialType: 'access_key',
    preview: 'AKIA…0001',
  },
  { type: 'location', source: 'scanner', ...loc },
  {
    type: 'grant',
    source: 'aws',
    identity: R,
    resource: 'arn:aws:s3:::ledger',
    actions: ['s3:PutObject'],
  },
  {
    type: 'grant',
    source: 'aws',
    identity: A,
    resource: 'arn:aws:sqs:::unobserved',
    actions: ['sqs:Send'],
  },
  {
    type: 'edge',
    source: 'aws',
    edgeType: 'can_assume',
    from: { type: 'identity', ref: A },
    to: { type: 'identity', ref: R },
  },
  {
    type: 'edge',
    source: 'k8s',
    edgeType: 'depends_on',
    from: { type: 'identity', ref: R },
    to: { type: 'identity', ref: W },
  },
]

const byDepth = (g: Graph | undefined) =>
  Object.fromEntries((g?.nodes ?? []).map((n) => [n.ref, n.depth]))

for (const backend of testBackends()) {
  describe(`${backend.name}: inventory neighbourhood`, () => {
    let store: Store
    let inventory: Inventory
    before(async () => {
      store = await backend.open()
      const clock = createFixedClock('2026-03-01T00:00:00Z')
      inventory = createInventory({ store, clock })
      await inventory.ingest(chain)
      clock.set('2026-03-05T00:00:00Z')
      await inventory.ingest([
        {
          type: 'edge',
          source: 'aws',
          edgeType: 'delegated_to',
          from: { type: 'identity', ref: W },
          to: { type: 'identity', ref: 'agent-7' },
        },
      ])
    })
    after(async () => {
      await store.close()
    })

    it('walks one level of stored and implied links', async () => {
      const g = await inventory.neighbourhood(A, { depth: 1 })
      assert.equal(g?.root, entityId('identity', A))
      assert.deepEqual(byDepth(g), {
        [A]: 0,
        alice: 1,
        'aws-key:AKIA1': 1,
        [R]: 1,
        'arn:aws:sqs:::unobserved': 1,
      })
      assert.equal(g?.truncated, false)
      assert.deepEqual(g?.edges.map((e) => `${e.edgeType} ${e.from.ref} -> ${e.to.ref}`).sort(), [
        `can_assume ${A} -> ${R}`,
        `has_grant ${A} -> arn:aws:sqs:::unobserved`,
        `owns alice -> ${A}`,
        `uses_credential ${A} -> aws-key:AKIA1`,
      ])
      const key = g?.nodes.find((n) => n.type === 'credential')
      assert.equal(key?.label, 'access_key AKIA…0001')
      const unobserved = g?.nodes.find((n) => n.ref === 'arn:aws:sqs:::unobserved')
      assert.deepEqual(unobserved?.attributes, { observed: false })
    })

    it('goes as deep as asked and no deeper', async () => {
      const g2 = await inventory.neighbourhood(A)
      assert.deepEqual(byDepth(g2), {
        [A]: 0,
        alice: 1,
        'aws-key:AKIA1': 1,
        [R]: 1,
        'arn:aws:sqs:::unobserved': 1,
        [locationRef(loc)]: 2,
        'arn:aws:s3:::ledger': 2,
        [W]: 2,
      })
      const g3 = await inventory.neighbourhood(A, { depth: 3 })
      assert.equal(byDepth(g3)['agent-7'], 3)
      const loc2 = g2?.nodes.find((n) => n.type === 'location')
      assert.equal(loc2?.label, 'git acme/app:.env:3')
    })

    it('follows only the edge types asked for', async () => {
      const g = await inventory.neighbourhood(A, {
        depth: 4,
        edgeTypes: ['uses_credential', 'credential_found_in'],
      })
      assert.deepEqual(byDepth(g), { [A]: 0, 'aws-key:AKIA1': 1, [locationRef(loc)]: 2 })
      assert.ok(
        g?.edges.every(
          (e) => e.edgeType === 'uses_credential' || e.edgeType === 'credential_found_in',
        ),
      )
    })

    it('keeps grants (has_grant) apart from trust relations (can_assume)', async () => {
      const grants = await inventory.neighbourhood(A, { depth: 1, edgeTypes: ['has_grant'] })
      assert.deepEqual(
        grants?.edges.map((e) => `${e.edgeType} ${e.to.ref}`),
        ['has_grant arn:aws:sqs:::unobserved'],
      )
      const trust = await inventory.neighbourhood(A, { depth: 1, edgeTypes: ['can_assume'] })
      assert.deepEqual(
        trust?.edges.map((e) => `${e.edgeType} ${e.to.ref}`),
        [`can_assume ${R}`],
      )
    })

    it('starts from a resource, an owner or a credential, by ref or id', async () => {
      assert.deepEqual(byDepth(await inventory.neighbourhood('arn:aws:s3:::ledger')), {
        'arn:aws:s3:::ledger': 0,
        [R]: 1,
        [A]: 2,
        [W]: 2,
      })
      assert.deepEqual(
        byDepth(await inventory.neighbourhood(entityId('owner', 'alice'), { depth: 1 })),
        {
          alice: 0,
          [A]: 1,
        },
      )
      const fromKey = await inventory.neighbourhood('aws-key:AKIA1', { depth: 1 })
      assert.equal(fromKey?.nodes[0]?.type, 'credential')
      assert.deepEqual(
        Object.keys(byDepth(fromKey)).sort(),
        ['aws-key:AKIA1', A, locationRef(loc)].sort(),
      )
      assert.equal(await inventory.neighbourhood('nothing-here'), undefined)
    })

    it('stops at the node limit and says so', async () => {
      const g = await inventory.neighbourhood(A, { depth: 3, limit: 3 })
      assert.equal(g?.nodes.length, 3)
      assert.equal(g?.truncated, true)
      const ids = new Set(g?.nodes.map((n) => n.id))
      assert.ok(g?.edges.every((e) => ids.has(e.from.id) && ids.has(e.to.id)))
    })

    it('answers as of a past instant', async () => {
      const g = await inventory.neighbourhood(W, { depth: 1, at: new Date('2026-03-02T00:00:00Z') })
      assert.deepEqual(byDepth(g), { [W]: 0, [R]: 1 })
      assert.equal(
        await inventory.neighbourhood(W, { at: new Date('2026-02-01T00:00:00Z') }),
        undefined,
      )
    })

    it('refuses a bad depth or edge type', async () => {
      await assert.rejects(inventory.neighbourhood(A, { depth: 7 }), (e) =>
        isTesseraError(e, 'TSR_VALIDATION'),
      )
      await assert.rejects(inventory.neighbourhood(A, { edgeTypes: ['knows' as never] }), (e) =>
        isTesseraError(e, 'TSR_VALIDATION'),
      )
    })
  })
}
