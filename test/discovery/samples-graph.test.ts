import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { nodeTlsProbe } from '../../src/discovery/certificates/tls-probe.js'
import { nodeFileReader, runConnectors } from '../../src/discovery/index.js'
import { createInventory } from '../../src/inventory/index.js'
import type { Inventory } from '../../src/inventory/inventory-types.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { readFileSync } from 'node:fs'
import { examplesDir, sampleConnectors, sampleSourceNames } from './samples.js'

const A = '210987654321'
const paymentsRole = `arn:aws:iam::${A}:role/service-role/payments-api`
const paymentsSa = 'k8s:prod-eu:6f1c2a9e-3b7d-4e51-9a0c-2d8f4b6e1a37'

for (const backend of testBackends()) {
  describe(`${backend.name}: every connector's sample in the graph`, () => {
    let store: Store
    let inventory: Inventory
    let app: FastifyInstance
    let token: string
    const clock = createFixedClock('2026-11-20T12:00:00Z')
    const run = async () =>
      runConnectors(
        { inventory, context: { clock, files: nodeFileReader, tls: nodeTlsProbe } },
        await sampleConnectors(),
      )

    before(async () => {
      store = await backend.open()
      inventory = createInventory({ store, clock })
      app = await buildApp({ store, inventory, clock, logger: { level: 'silent' } })
      token = (await createApiToken(store, { name: 'r', scopes: ['read'] }, clock)).token
    })
    after(async () => {
      await app.close()
      await store.close()
    })
    const get = async (url: string) => {
      const res = await app.inject({ url, headers: { authorization: `Bearer ${token}` } })
      assert.equal(res.statusCode, 200, res.body)
      return res.json()
    }

    it('ingests every sample without a problem', async () => {
      // Teams come from the people source; connectors only name them on identities.
      await inventory.ingest(
        ['payments-core', 'billing-core'].map((ref) => ({
          type: 'owner' as const,
          source: 'hr',
          ref,
          ownerType: 'team' as const,
          name: ref,
        })),
      )
      const stats = await run()
      assert.deepEqual(
        stats.map((s) => s.source),
        sampleSourceNames,
      )
      for (const s of stats) {
        assert.deepEqual(s.problems, [], s.source)
        assert.equal(s.status, 'succeeded', s.source)
        assert.ok(s.new > 0 && s.new === s.seen, `${s.source}: ${s.new} new of ${s.seen}`)
      }
    })

    it('shows owners, grants and can_assume edges through /v1/identities/:id', async () => {
      const role = await get(`/v1/identities/${encodeURIComponent(paymentsRole)}`)
      assert.equal(role.kind, 'iam_role')
      assert.equal(role.owner, 'payments-core')
      assert.equal(role.ownerDetail.ownerType, 'team')
      assert.ok(
        role.grants.some(
          (g: { resource: string; actions: string[] }) =>
            g.resource === `arn:aws:dynamodb:eu-west-1:${A}:table/payments-ledger` &&
            g.actions.includes('dynamodb:PutItem'),
        ),
      )
      const assumers = role.edges
        .filter(
          (e: { edgeType: string; to: { ref: string } }) =>
            e.edgeType === 'can_assume' && e.to.ref === paymentsRole,
        )
        .map((e: { from: { ref: string } }) => e.from.ref)
        .sort()
      // One from the trust policy (AWS sample), one from the IRSA annotation (Kubernetes sample).
      assert.deepEqual(assumers, ['aws-service:ec2.amazonaws.com', paymentsSa])

      const user = await get(
        `/v1/identities/${encodeURIComponent(`arn:aws:iam::${A}:user/service/svc-billing-sync`)}`,
      )
      assert.equal(user.owner, 'billing-core')
      assert.deepEqual(
        user.credentials
          .map((c: { ref: string; state: string }) => [c.ref.replace(/^.*#/, 'key#'), c.state])
          .sort(),
        [
          ['key#1', 'active'],
          ['key#2', 'inactive'],
        ],
      )

      const sa = await get(`/v1/identities/${encodeURIComponent(paymentsSa)}`)
      assert.equal(sa.owner, 'payments-core')
      assert.ok(
        sa.credentials.some((c: { credentialType: string }) => c.credentialType === 'token'),
      )
      assert.ok(
        sa.grants.some((g: { via: string }) => g.via.endsWith('/rolebindings/payments-edit')),
      )

      const root = await get(
        `/v1/identities/${encodeURIComponent('ssh:root@bastion-1.prod.acme.example')}`,
      )
      assert.equal(root.kind, 'ssh_principal')
      assert.ok(root.edges.some((e: { edgeType: string }) => e.edgeType === 'uses_credential'))

      const etl = await get(
        `/v1/identities/${encodeURIComponent('payments-etl@acme-data.iam.gserviceaccount.com')}`,
      )
      assert.equal(etl.credentials.length, 3)
      assert.ok(
        etl.grants.some((g: { actions: string[] }) => g.actions.includes('roles/bigquery.jobUser')),
      )
      const app = await get(
        `/v1/identities/${encodeURIComponent('azure:app:bcd0536d-ac06-4ec2-b0a8-07cd40cf0fd2')}`,
      )
      assert.equal(app.owner, 'payments-core')
      assert.ok(app.credentials.some((c: { preview: string }) => c.preview === 'Qx7…'))
      assert.ok(app.edges.some((e: { edgeType: string }) => e.edgeType === 'depends_on'))

      const approle = await get(
        `/v1/identities/${encodeURIComponent('vault://main/auth/approle/role/payments-api')}`,
      )
      assert.deepEqual(
        approle.credentials.map((c: { credentialType: string }) => c.credentialType).sort(),
        ['client_secret', 'token'],
      )
      assert.ok(
        approle.grants.some((g: { via: string }) =>
          g.via.endsWith('/sys/policies/acl/payments-read'),
        ),
      )

      const svid = await get(
        `/v1/identities/${encodeURIComponent('spiffe://acme.example/ns/payments/sa/payments-api')}`,
      )
      assert.equal(svid.kind, 'workload')
      assert.equal(svid.credentials[0].credentialType, 'certificate')
    })

    it('walks from a pod across connectors through /v1/graph', async () => {
      const workload = 'k8s:prod-eu:workload:payments/Deployment/payments-api'
      const g = await get(`/v1/graph?node=${encodeURIComponent(workload)}&depth=3`)
      const refs = new Set(g.nodes.map((n: { ref: string }) => n.ref))
      assert.ok(refs.has(paymentsSa), 'runs_as its service account')
      assert.ok(refs.has(paymentsRole), 'which can assume the AWS role')
      assert.ok(
        refs.has(`arn:aws:dynamodb:eu-west-1:${A}:table/payments-ledger`),
        'which is granted the table',
      )
      const types = new Set(g.edges.map((e: { edgeType: string }) => e.edgeType))
      for (const t of ['runs_as', 'can_assume', 'has_grant', 'uses_credential'])
        assert.ok(types.has(t), t)
    })

    it('never stores secret material from the samples', async () => {
      const everything: string[] = []
      for await (const o of inventory.exportObservations()) everything.push(JSON.stringify(o))
      for (const table of [
        'identity',
        'credential',
        'credential_location',
        'grant',
        'edge',
        'resource',
      ]) {
        const rows = await store.db
          .selectFrom(table as 'identity')
          .selectAll()
          .execute()
        everything.push(JSON.stringify(rows))
      }
      const all = everything.join('\n')
      const planted = [
        'Kx9-sample-ledger-pw', // in a Kubernetes secret's data (base64)
        'changeit-sample', // the PKCS#12 password
        'ZGVwbG95OnNhbXBsZS1yZWdpc3RyeS1wdw', // registry auth inside a dockerconfigjson
      ]
      // A line of each private key's body.
      for (const f of [
        'ssh/keys/legacy_rsa.pem',
        'ssh/keys/id_ed25519_deploy',
        'ssh/bastion/home/ci/.ssh/id_ecdsa',
      ]) {
        planted.push(readFileSync(examplesDir + f, 'utf8').split('\n')[3]!)
      }
      for (const p of planted)
        assert.ok(!all.includes(p), `found planted material ${p.slice(0, 6)}…`)
    })

    it('a second ingest of the same samples changes nothing', async () => {
      const before = await inventory.stats()
      clock.advance(3_600_000)
      const again = await run()
      for (const s of again) {
        assert.deepEqual([s.source, s.new, s.changed, s.closed, s.errors], [s.source, 0, 0, 0, 0])
        assert.equal(s.unchanged, s.seen)
      }
      // The same facts through the inventory's own ingest: IngestResult says unchanged.
      const observations = []
      for await (const o of inventory.exportObservations()) observations.push(o)
      const r = await inventory.ingest(observations)
      assert.deepEqual([r.inserted, r.changed, r.unchanged], [0, 0, observations.length])
      assert.deepEqual(await inventory.stats(), before)
    })
  })
}
