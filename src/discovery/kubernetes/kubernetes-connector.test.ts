import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { byType, collect, make, memoryFiles } from '../testing/collect.js'
import { createKubernetesConnector } from './kubernetes-connector.js'

const file = new URL('../../../examples/kubernetes/cluster-dump.json', import.meta.url).pathname
const sa = (uid: string) => `k8s:prod-eu:${uid}`
const paymentsApi = sa('6f1c2a9e-3b7d-4e51-9a0c-2d8f4b6e1a37')
const ledger = sa('b84e07d3-1c95-4f2a-8e6b-53a9d0c7f412')
const prometheus = sa('2d7a9c41-6e08-4b3f-a1d5-8c2e7f90b6a3')
const argocd = sa('93c5e1f8-0a4d-4d7b-b2e6-7f1a8c3d5e90')

describe('kubernetes connector on the sample dump', () => {
  it('maps service accounts, secrets (type and age only), bindings and pods', async () => {
    const r = await collect(make(createKubernetesConnector, { file }, { name: 'k8s:prod-eu' }))
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.invalid, [])
    const ids = new Map(byType(r.observations, 'identity').map((i) => [i.ref, i]))
    assert.equal(ids.get(paymentsApi)?.name, 'system:serviceaccount:payments:payments-api')
    assert.equal(ids.get(paymentsApi)?.owner, 'payments-core')
    assert.equal(ids.get(ledger)?.owner, 'ana.costa@acme.example')
    assert.equal(ids.get(ledger)?.attributes?.automountToken, false)
    assert.equal(ids.get(prometheus)?.owner, 'platform-core')
    assert.equal(ids.get(paymentsApi)?.createdAt, '2025-04-02T10:15:22.000Z')

    const creds = new Map(byType(r.observations, 'credential').map((c) => [c.ref, c]))
    const token = creds.get('k8s-secret:prod-eu/payments/payments-api-token-x7k2p')!
    assert.equal(token.credentialType, 'token')
    assert.equal(token.identity, paymentsApi)
    assert.equal(
      creds.get('k8s-secret:prod-eu/payments/payments-tls')?.credentialType,
      'certificate',
    )
    assert.equal(
      creds.get('k8s-secret:prod-eu/payments/ledger-db')?.attributes?.secretType,
      'Opaque',
    )
    assert.equal(creds.get('k8s-secret:prod-eu/payments/regcred')?.credentialType, 'password')
    const locs = byType(r.observations, 'location')
    assert.ok(locs.some((l) => l.locationType === 'k8s_secret' && l.path === 'payments/ledger-db'))

    // Never a secret value, encoded or not.
    const out = JSON.stringify(r.observations)
    const dump = JSON.parse(readFileSync(file, 'utf8')) as {
      items: { kind: string; data?: Record<string, string> }[]
    }
    for (const s of dump.items.filter((i) => i.kind === 'Secret')) {
      for (const value of Object.values(s.data ?? {})) {
        assert.ok(!out.includes(value), 'encoded value leaked')
        const decoded = Buffer.from(value, 'base64').toString()
        // (`namespace: payments` decodes to a word that is also the namespace's name.)
        if (decoded.length > 12) assert.ok(!out.includes(decoded), 'decoded value leaked')
      }
    }
    assert.ok(!out.includes('Kx9-sample-ledger-pw'))

    const grants = byType(r.observations, 'grant')
    const g = (id: string) => grants.filter((x) => x.identity === id)
    assert.deepEqual(
      g(ledger)
        .map((x) => [x.resource, x.actions.join(',')])
        .sort(),
      [
        ['k8s://prod-eu/namespaces/payments/configmaps', 'get,list,watch'],
        ['k8s://prod-eu/namespaces/payments/secrets/ledger-db', 'get'],
      ],
    )
    assert.equal(
      g(ledger)[0]!.via,
      'k8s://prod-eu/namespaces/payments/rolebindings/ledger-secret-reader',
    )
    // A ClusterRole missing from the dump: the binding is still a (namespaced) grant, marked unresolved.
    assert.deepEqual(
      g(paymentsApi).map((x) => [x.resource, x.actions, x.attributes?.unresolved]),
      [['k8s://prod-eu/namespaces/payments', ['bind:ClusterRole/edit'], true]],
    )
    const admin = g(argocd).find((x) => x.resource === 'k8s://prod-eu/*.*')!
    assert.deepEqual(admin.actions, ['*'])
    assert.ok(g(prometheus).some((x) => x.resource === 'k8s://prod-eu/ingresses.networking.k8s.io'))
    assert.ok(g(prometheus).some((x) => x.resource === 'k8s://prod-eu/nonresource/metrics'))

    const edges = byType(r.observations, 'edge')
    const runsAs = edges
      .filter((e) => e.edgeType === 'runs_as')
      .map((e) => `${e.from.ref} -> ${e.to.ref}`)
    assert.deepEqual(runsAs.sort(), [
      `k8s:prod-eu:workload:monitoring/StatefulSet/prometheus-k8s -> ${prometheus}`,
      `k8s:prod-eu:workload:payments/Deployment/payments-api -> ${paymentsApi}`,
      `k8s:prod-eu:workload:payments/StatefulSet/ledger-worker -> ${ledger}`,
    ])
    // Two replicas are one workload.
    assert.equal(byType(r.observations, 'identity').filter((i) => i.kind === 'workload').length, 3)
    const uses = edges.filter(
      (e) => e.edgeType === 'uses_credential' && e.from.ref.endsWith('payments-api'),
    )
    assert.deepEqual(uses.map((e) => e.to.ref).sort(), [
      'k8s-secret:prod-eu/payments/ledger-db',
      'k8s-secret:prod-eu/payments/payments-tls',
      'k8s-secret:prod-eu/payments/regcred',
    ])
    // IRSA: the service account can assume the AWS role.
    const irsa = edges.find((e) => e.edgeType === 'can_assume' && e.from.ref === paymentsApi)!
    assert.equal(irsa.to.ref, 'arn:aws:iam::210987654321:role/service-role/payments-api')
  })

  it('keeps the items before a truncation and names the item', async () => {
    const text = readFileSync(file, 'utf8')
    const cut = text.indexOf('"name": "prometheus-k8s-0"')
    const files = memoryFiles({ '/d/dump.json': text.slice(0, cut) })
    const r = await collect(
      make(createKubernetesConnector, { file: '/d/dump.json', cluster: 'prod-eu' }),
      { files },
    )
    assert.equal(r.errors.length, 1)
    assert.match(
      r.errors[0]!.message,
      /^\/d\/dump\.json at \$\.items\[18\]\.metadata \(line \d+, column \d+, byte \d+\): invalid JSON/,
    )
    const workloads = byType(r.observations, 'identity').filter((i) => i.kind === 'workload')
    assert.equal(workloads.length, 2)
  })

  it('reports an item that is not a Kubernetes object by path and keeps the rest', async () => {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { items: unknown[] }
    doc.items[2] = { kind: 'ServiceAccount' }
    const files = memoryFiles({ '/d/dump.json': JSON.stringify(doc) })
    const r = await collect(
      make(createKubernetesConnector, { file: '/d/dump.json', cluster: 'prod-eu' }),
      { files },
    )
    assert.deepEqual(
      r.errors.map((e) => e.message),
      ['/d/dump.json at $.items[2]: item without kind or metadata.name'],
    )
    assert.ok(byType(r.observations, 'identity').some((i) => i.ref === paymentsApi))
  })

  it('refuses a file that is not a List', async () => {
    const files = memoryFiles({ '/d/x.json': '[1,2]' })
    const r = await collect(make(createKubernetesConnector, { file: '/d/x.json', cluster: 'c' }), {
      files,
    })
    assert.match(r.errors[0]!.message, /expected a kubectl List/)
  })
})
