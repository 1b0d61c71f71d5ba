import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { collect, make } from '../testing/collect.js'
import { startFakeApi, type FakeApi, type FakeRequest } from '../testing/fake-api.js'
import { createVaultConnector } from './vault-connector.js'

const file = new URL('../../../examples/vault/acme-vault.json', import.meta.url).pathname
const sample = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
const token = 'hvs.fakeVaultTokenForLiveModeTests'

/** LIST answers from the sample's paths: the next segment under a prefix (with `/` for a folder). */
function childKeys(prefix: string): string[] {
  const out = new Set<string>()
  for (const key of Object.keys(sample)) {
    if (!key.startsWith(prefix)) continue
    const rest = key.slice(prefix.length)
    const slash = rest.indexOf('/')
    out.add(slash === -1 ? rest : rest.slice(0, slash + 1))
  }
  return [...out]
}

function vaultApi(options: { denyLeases?: boolean } = {}) {
  return startFakeApi((req: FakeRequest) => {
    if (req.headers['x-vault-token'] !== token) {
      return { status: 403, body: { errors: ['permission denied'] } }
    }
    const path = req.path.replace(/^\/v1\//, '')
    const body = (req.body ?? {}) as Record<string, string>
    const listed = (keys: string[]) =>
      keys.length === 0 ? { status: 404, body: { errors: [] } } : { body: { data: { keys } } }
    if (req.query.get('list') === 'true') {
      if (path === 'sys/policies/acl') return listed(childKeys('sys/policies/acl/'))
      if (path === 'auth/approle/role')
        return listed(childKeys('auth/approle/role/').filter((k) => !k.endsWith('/')))
      const secretIds = /^auth\/approle\/role\/([^/]+)\/secret-id$/.exec(path)
      if (secretIds)
        return listed(childKeys(`auth/approle/role/${secretIds[1]}/secret-id-accessor/lookup/`))
      if (path === 'auth/token/accessors') return listed(childKeys('auth/token/lookup-accessor/'))
      if (path.startsWith('sys/leases/lookup')) {
        if (options.denyLeases) return { status: 403, body: { errors: ['permission denied'] } }
        return listed(childKeys(path.endsWith('/') ? path : `${path}/`))
      }
      return undefined
    }
    if (req.method === 'POST' && path === 'auth/token/lookup-accessor')
      return { body: sample[`auth/token/lookup-accessor/${body.accessor}`] }
    const lookup = /^auth\/approle\/role\/([^/]+)\/secret-id-accessor\/lookup$/.exec(path)
    if (req.method === 'POST' && lookup)
      return {
        body: sample[
          `auth/approle/role/${lookup[1]}/secret-id-accessor/lookup/${body.secret_id_accessor}`
        ],
      }
    if (req.method === 'PUT' && path === 'sys/leases/lookup')
      return { body: sample[`sys/leases/lookup/${body.lease_id}`] }
    if (req.method === 'GET' && sample[path] !== undefined) return { body: sample[path] }
    return undefined
  })
}

describe('vault connector, live API', () => {
  let api: FakeApi
  before(async () => {
    api = await vaultApi()
  })
  after(() => api.close())

  it('reads auth methods, policies, AppRoles, accessors and leases into the same facts as the export', async () => {
    const fromFile = await collect(make(createVaultConnector, { file }, { name: 'vault:acme' }))
    const live = await collect(
      make(
        createVaultConnector,
        { api: api.url, tokenEnv: 'VT' },
        { name: 'vault:acme', env: { VT: token } },
      ),
    )
    assert.deepEqual(live.errors, [])
    assert.deepEqual(live.invalid, [])
    const canonical = (list: readonly unknown[]) => list.map((o) => JSON.stringify(o)).sort()
    assert.ok(live.observations.length > 10)
    assert.deepEqual(canonical(live.observations), canonical(fromFile.observations))
    // Tokens were looked up by accessor only: no request carried a token value.
    assert.ok(api.requests.every((r) => !JSON.stringify(r.body ?? {}).includes('hvs.')))
  })

  it('reports a path the token may not list and keeps the rest', async () => {
    const limited = await vaultApi({ denyLeases: true })
    try {
      const r = await collect(
        make(
          createVaultConnector,
          { api: limited.url, tokenEnv: 'VT' },
          { name: 'vault:acme', env: { VT: token } },
        ),
      )
      assert.equal(r.errors.length, 1)
      assert.match(r.errors[0]!.message, /sys\/leases\/lookup\/: HTTP 403: permission denied/)
      assert.ok(r.observations.some((o) => o.type === 'identity'))
      assert.ok(
        !r.observations.some((o) => o.type === 'credential' && o.ref.includes('database/creds')),
      )
    } finally {
      await limited.close()
    }
  })
})
