import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { createAzureConnector } from '../azure/azure-connector.js'
import { collect, make } from '../testing/collect.js'
import { startFakeApi, type FakeApi } from '../testing/fake-api.js'
import { createGcpConnector } from './gcp-connector.js'

const example = (p: string) => new URL(`../../../examples/${p}`, import.meta.url).pathname
const read = (p: string) => JSON.parse(readFileSync(example(p), 'utf8')) as unknown
const token = 'ya29.fake-access-token-for-live-mode'
const canonical = (list: readonly unknown[]) => list.map((o) => JSON.stringify(o)).sort()

describe('gcp connector, live IAM and Resource Manager APIs', () => {
  const accounts = read('gcp/service-accounts.json') as { name: string }[]
  const keys = [
    ...(read('gcp/keys-payments-etl.json') as { name: string }[]),
    ...(read('gcp/keys-legacy-airflow.json') as { name: string }[]),
  ]
  let api: FakeApi
  before(async () => {
    api = await startFakeApi((req) => {
      if (req.headers.authorization !== `Bearer ${token}`)
        return {
          status: 401,
          body: {
            error: { code: 401, message: 'Request had invalid authentication credentials.' },
          },
        }
      if (req.path === '/v1/projects/acme-data/serviceAccounts') {
        const start = Number(req.query.get('pageToken') ?? 0)
        const next = start + 2 < accounts.length ? String(start + 2) : undefined
        return {
          body: {
            accounts: accounts.slice(start, start + 2),
            ...(next ? { nextPageToken: next } : {}),
          },
        }
      }
      const k = /^\/v1\/(projects\/acme-data\/serviceAccounts\/[^/]+)\/keys$/.exec(req.path)
      if (k) return { body: { keys: keys.filter((x) => x.name.startsWith(`${k[1]}/keys/`)) } }
      if (req.method === 'POST' && req.path === '/v1/projects/acme-data:getIamPolicy')
        return { body: read('gcp/iam-policy.json') }
      return undefined
    })
  })
  after(() => api.close())

  it('yields the same facts as the gcloud exports', async () => {
    const fromFile = await collect(
      make(
        createGcpConnector,
        {
          serviceAccounts: example('gcp/service-accounts.json'),
          keys: [example('gcp/keys-payments-etl.json'), example('gcp/keys-legacy-airflow.json')],
          iamPolicy: example('gcp/iam-policy.json'),
          project: 'acme-data',
        },
        { name: 'gcp:data' },
      ),
    )
    const live = await collect(
      make(
        createGcpConnector,
        { api: api.url, resourceManagerApi: api.url, project: 'acme-data', tokenEnv: 'T' },
        { name: 'gcp:data', env: { T: token } },
      ),
    )
    assert.deepEqual(live.errors, [])
    assert.deepEqual(live.invalid, [])
    assert.ok(live.observations.length > 8)
    assert.deepEqual(canonical(live.observations), canonical(fromFile.observations))
    assert.ok(api.requests.some((r) => r.query.get('pageToken') === '2'))
  })

  it("reports Google's own error text for a bad token", async () => {
    const r = await collect(
      make(
        createGcpConnector,
        { api: api.url, project: 'acme-data', tokenEnv: 'T', readIamPolicy: false },
        { env: { T: 'nope' } },
      ),
    )
    assert.equal(r.errors.length, 1)
    assert.match(r.errors[0]!.message, /HTTP 401: Request had invalid authentication credentials/)
  })
})

describe('azure connector, live Microsoft Graph', () => {
  let api: FakeApi
  before(async () => {
    api = await startFakeApi((req, base) => {
      if (req.headers.authorization !== `Bearer ${token}`) return { status: 401, body: {} }
      const list =
        req.path === '/v1.0/applications'
          ? (read('azure/apps.json') as unknown[])
          : req.path === '/v1.0/servicePrincipals'
            ? (read('azure/service-principals.json') as unknown[])
            : undefined
      if (!list) return undefined
      // One object a page, with Graph's absolute @odata.nextLink (opaque skip token).
      const skip = Number(req.query.get('$skiptoken') ?? 0)
      const next = skip + 1 < list.length ? `${base}${req.path}?$skiptoken=${skip + 1}` : undefined
      return {
        body: { value: list.slice(skip, skip + 1), ...(next ? { '@odata.nextLink': next } : {}) },
      }
    })
  })
  after(() => api.close())

  it('yields the same facts as the az exports, following nextLink', async () => {
    const fromFile = await collect(
      make(
        createAzureConnector,
        {
          apps: example('azure/apps.json'),
          servicePrincipals: example('azure/service-principals.json'),
        },
        { name: 'azure:corp' },
      ),
    )
    const live = await collect(
      make(
        createAzureConnector,
        { api: api.url, tokenEnv: 'T' },
        { name: 'azure:corp', env: { T: token } },
      ),
    )
    assert.deepEqual(live.errors, [])
    assert.deepEqual(live.invalid, [])
    assert.ok(live.observations.length > 8)
    assert.deepEqual(canonical(live.observations), canonical(fromFile.observations))
    assert.ok(api.requests.filter((r) => r.query.has('$skiptoken')).length >= 3)
  })

  it('will not follow a nextLink to another origin with the token', async () => {
    const evil = await startFakeApi(() => ({
      body: { value: [], '@odata.nextLink': 'https://attacker.example/v1.0/applications?x=1' },
    }))
    try {
      const r = await collect(
        make(createAzureConnector, { api: evil.url, tokenEnv: 'T' }, { env: { T: token } }),
      )
      assert.ok(
        r.errors.some((e) => /another origin \(https:\/\/attacker\.example\)/.test(e.message)),
      )
    } finally {
      await evil.close()
    }
  })
})
