import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { byType, collect, make, memoryFiles } from '../testing/collect.js'
import { createVaultConnector, policyPaths } from './vault-connector.js'

const file = new URL('../../../examples/vault/acme-vault.json', import.meta.url).pathname
const base = 'vault://main'

describe('vault connector on the sample export', () => {
  it('maps auth methods, AppRoles with their policies as grants, secret-ids, token accessors and leases', async () => {
    const r = await collect(make(createVaultConnector, { file }, { name: 'vault:main' }))
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.invalid, [])
    const ids = new Map(byType(r.observations, 'identity').map((i) => [i.ref, i]))
    const role = ids.get(`${base}/auth/approle/role/payments-api`)!
    assert.deepEqual(
      [role.kind, role.attributes?.policies, role.attributes?.secretIdBoundCidrs],
      ['api_client', ['payments-read'], ['10.40.0.0/16']],
    )
    const grants = byType(r.observations, 'grant')
    assert.deepEqual(
      grants
        .filter((g) => g.identity === role.ref)
        .map((g) => [g.resource, g.actions.join(',')])
        .sort(),
      [
        [`${base}/database/creds/payments-ro`, 'read'],
        [`${base}/secret/data/payments/*`, 'list,read'],
      ],
    )
    // A deny block grants nothing.
    assert.ok(!grants.some((g) => g.resource.endsWith('root-token')))
    assert.ok(
      grants.some((g) => g.resource === `${base}/auth/token/create` && g.actions.includes('sudo')),
    )
    const creds = new Map(byType(r.observations, 'credential').map((c) => [c.ref, c]))
    const sid = creds.get('vault-secret-id:main/84896a0c-1347-aa90-a4f6-aca8b7558780')!
    assert.deepEqual(
      [sid.credentialType, sid.identity, sid.expiresAt],
      ['client_secret', role.ref, '2026-12-02T08:15:44.123Z'],
    )
    assert.equal(
      creds.get('vault-secret-id:main/2b4d6f8a-0c2e-4a6c-8e0a-2c4e6a8c0e2a')?.expiresAt,
      undefined,
      'zero time is never',
    )
    const tok = creds.get('vault-token:main/hmtYcN2lq1Q6n6xMPnBCQWS5')!
    assert.deepEqual([tok.identity, tok.expiresAt], [role.ref, '2026-11-20T13:00:00.000Z'])
    const legacy = creds.get('vault-token:main/Xq3tM8wLp0ZsK4vB7nR2yD9e')!
    assert.deepEqual(
      [legacy.identity, legacy.expiresAt, legacy.createdAt],
      [undefined, undefined, '2022-01-01T00:00:00.000Z'],
    )
    const lease = creds.get('vault-lease:main/database/creds/payments-ro/3xKq9ZpL7mN2vB8cR4tY6wQ1')!
    assert.equal(lease.credentialType, 'password')
    assert.ok(
      byType(r.observations, 'resource').some(
        (x) => x.ref === `${base}/auth/kubernetes` && x.resourceType === 'vault_auth_method',
      ),
    )
  })

  it('reads policy HCL paths and capabilities', () => {
    assert.deepEqual(
      policyPaths(
        'path "a/*" {\n capabilities = ["read"]\n}\npath "b" { capabilities = ["deny"] }',
      ),
      [
        { path: 'a/*', capabilities: ['read'] },
        { path: 'b', capabilities: ['deny'] },
      ],
    )
  })

  it('a truncated export keeps the complete responses and names the path; a response without data is reported', async () => {
    const text = readFileSync(file, 'utf8')
    const files = memoryFiles({
      '/v/x.json': text.slice(0, text.indexOf('"display_name": "token-legacy-jenkins"')),
      '/v/y.json': JSON.stringify({ 'auth/approle/role/x': { errors: ['permission denied'] } }),
    })
    const r = await collect(make(createVaultConnector, { file: '/v/x.json', cluster: 'main' }), {
      files,
    })
    assert.equal(r.errors.length, 1)
    assert.match(
      r.errors[0]!.message,
      /^\/v\/x\.json at \$\["auth\/token\/lookup-accessor\/Xq3tM8wLp0ZsK4vB7nR2yD9e"\]\.data \(line/,
    )
    assert.ok(byType(r.observations, 'identity').length === 2)
    const tokens = byType(r.observations, 'credential').filter((c) =>
      c.ref.startsWith('vault-token:'),
    )
    assert.deepEqual(
      tokens.map((t) => t.ref),
      ['vault-token:main/hmtYcN2lq1Q6n6xMPnBCQWS5'],
    )
    const y = await collect(make(createVaultConnector, { file: '/v/y.json', cluster: 'main' }), {
      files,
    })
    assert.deepEqual(
      y.errors.map((e) => e.message),
      ['/v/y.json at $["auth/approle/role/x"]: expected a response with a data object'],
    )
  })
})
