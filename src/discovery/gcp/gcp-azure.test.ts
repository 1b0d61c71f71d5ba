import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { createAzureConnector } from '../azure/azure-connector.js'
import { byType, collect, make, memoryFiles } from '../testing/collect.js'
import { createGcpConnector } from './gcp-connector.js'

const ex = new URL('../../../examples/', import.meta.url).pathname
const P = 'acme-data'

describe('gcp connector on the sample exports', () => {
  const options = {
    serviceAccounts: ex + 'gcp/service-accounts.json',
    keys: [ex + 'gcp/keys-payments-etl.json', ex + 'gcp/keys-legacy-airflow.json'],
    iamPolicy: ex + 'gcp/iam-policy.json',
    project: P,
  }

  it('maps service accounts, their keys and project role bindings', async () => {
    const r = await collect(make(createGcpConnector, options, { name: 'gcp:data' }))
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.invalid, [])
    const ids = new Map(byType(r.observations, 'identity').map((i) => [i.ref, i]))
    assert.equal(ids.size, 4)
    assert.equal(ids.get(`legacy-airflow@${P}.iam.gserviceaccount.com`)?.state, 'disabled')
    const keys = new Map(byType(r.observations, 'credential').map((c) => [c.ref, c]))
    const old = keys.get('gcp-key:3f9a1c7e5b2d4086a1e3c5f7b9d0e2a4c6f8b1d3')!
    assert.deepEqual(
      [old.identity, old.createdAt, old.expiresAt],
      [`payments-etl@${P}.iam.gserviceaccount.com`, '2024-02-11T09:14:55.000Z', undefined],
    )
    assert.equal(
      keys.get('gcp-key:8c2e4a6f0b1d3e5a7c9f2b4d6e8a0c1f3b5d7e9a')?.expiresAt,
      '2026-11-28T16:02:10.000Z',
    )
    assert.equal(
      keys.get('gcp-key:a1b3c5d7e9f2a4c6e8b0d1f3a5c7e9b2d4f6a8c0')?.attributes?.managedByGoogle,
      true,
    )
    assert.equal(keys.get('gcp-key:5e7a9c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a')?.state, 'inactive')
    const grants = byType(r.observations, 'grant')
    const etl = grants.find((g) => g.identity === `payments-etl@${P}.iam.gserviceaccount.com`)!
    assert.deepEqual(etl.actions, ['roles/bigquery.dataViewer', 'roles/bigquery.jobUser'])
    assert.equal(etl.resource, `//cloudresourcemanager.googleapis.com/projects/${P}`)
    const ext = grants.find((g) => g.identity.startsWith('ci-deployer@'))!
    assert.deepEqual(ext.attributes, { condition: 'until-2027', external: true })
    assert.ok(
      !grants.some((g) => g.identity.includes('ana.costa')),
      'people are not service accounts',
    )
  })

  it('keeps the keys before a truncation and names the element', async () => {
    const text = readFileSync(ex + 'gcp/keys-payments-etl.json', 'utf8')
    const files = memoryFiles({
      '/g/sa.json': readFileSync(options.serviceAccounts),
      '/g/keys.json': text.slice(0, text.lastIndexOf('"keyType"')),
    })
    const r = await collect(
      make(createGcpConnector, { serviceAccounts: '/g/sa.json', keys: '/g/keys.json' }),
      { files },
    )
    assert.equal(r.errors.length, 1)
    assert.match(
      r.errors[0]!.message,
      /^\/g\/keys\.json at \$\[2\] \(line \d+, column \d+, byte \d+\): invalid JSON/,
    )
    assert.equal(byType(r.observations, 'credential').length, 2)
  })
})

describe('azure connector on the sample exports', () => {
  it('maps app registrations, service principals and their secrets and certificates', async () => {
    const r = await collect(
      make(
        createAzureConnector,
        { apps: ex + 'azure/apps.json', servicePrincipals: ex + 'azure/service-principals.json' },
        { name: 'azure:corp' },
      ),
    )
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.invalid, [])
    const ids = new Map(byType(r.observations, 'identity').map((i) => [i.ref, i]))
    const app = ids.get('azure:app:bcd0536d-ac06-4ec2-b0a8-07cd40cf0fd2')!
    assert.deepEqual(
      [app.kind, app.owner, app.attributes?.apiPermissions],
      ['oauth_app', 'payments-core', 2],
    )
    assert.equal(ids.get('azure:app:e4f6a8b0-c2d4-4e6f-8a0b-2c4d6e8f0a13')?.owner, 'ledger-core')
    assert.equal(ids.get('azure:sp:6b8d0f2a-4c6e-4b8d-0f2a-4c6e8b0d2f46')?.state, 'disabled')
    const mi = ids.get('azure:sp:7c9e1a3b-5d7f-4c9e-1a3b-5d7f9c1e3a57')!
    assert.deepEqual([mi.kind, mi.owner], ['service_account', 'platform-core'])
    const creds = new Map(byType(r.observations, 'credential').map((c) => [c.ref, c]))
    const secret = creds.get(
      'azure-secret:bcd0536d-ac06-4ec2-b0a8-07cd40cf0fd2/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0',
    )!
    assert.deepEqual(
      [secret.credentialType, secret.preview, secret.expiresAt],
      ['client_secret', 'Qx7…', '2027-03-01T00:00:00.000Z'],
    )
    const cert = creds.get(
      'azure-cert:bcd0536d-ac06-4ec2-b0a8-07cd40cf0fd2/7c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f',
    )!
    assert.equal(cert.fingerprint, 'sha1:0b260dd7bcb6141ac9329c8bf800da5c25238a2a')
    assert.equal(
      creds.get(
        'azure-secret:e4f6a8b0-c2d4-4e6f-8a0b-2c4d6e8f0a13/2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e',
      )?.expiresAt,
      '2299-12-31T00:00:00.000Z',
    )
    const deps = byType(r.observations, 'edge').map((e) => `${e.from.ref} -> ${e.to.ref}`)
    assert.deepEqual(deps.sort(), [
      'azure:sp:5a7c9e1b-3d5f-4a7c-9e1b-3d5f7a9c1e35 -> azure:app:bcd0536d-ac06-4ec2-b0a8-07cd40cf0fd2',
      'azure:sp:6b8d0f2a-4c6e-4b8d-0f2a-4c6e8b0d2f46 -> azure:app:e4f6a8b0-c2d4-4e6f-8a0b-2c4d6e8f0a13',
    ])
  })

  it('reports an element that is not an object by path and a bad file shape', async () => {
    const files = memoryFiles({
      '/a/apps.json': '[{"appId":"x1"}, 3, {"displayName":"no id"}]',
      '/a/sp.json': '{"odata":1}',
    })
    const r = await collect(
      make(createAzureConnector, { apps: '/a/apps.json', servicePrincipals: '/a/sp.json' }),
      { files },
    )
    assert.deepEqual(
      r.errors.map((e) => e.message),
      [
        '/a/apps.json at $[1]: expected an object (one of the app registrations)',
        '/a/apps.json at $[2]: app registration without appId',
        '/a/sp.json at $: expected a JSON array of service principals',
      ],
    )
    assert.equal(byType(r.observations, 'identity').length, 1)
  })
})
