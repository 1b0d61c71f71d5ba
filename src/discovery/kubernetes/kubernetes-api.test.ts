import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createFixedClock } from '../../runtime/clock.js'
import { nodeFileReader } from '../files.js'
import { createHttpJsonClient } from '../live/http-client.js'
import { collect, make } from '../testing/collect.js'
import { startFakeApi, type FakeApi } from '../testing/fake-api.js'
import { fetchKubernetes, kubernetesLists } from './kubernetes-api.js'
import { createKubernetesConnector } from './kubernetes-connector.js'

const file = new URL('../../../examples/kubernetes/cluster-dump.json', import.meta.url).pathname
const dump = JSON.parse(readFileSync(file, 'utf8')) as { items: Record<string, unknown>[] }
const token = 'eyJhbGciOiJSUzI1NiJ9.fake-service-account-token.sig'

describe('kubernetes connector, live API over TLS with a private CA', () => {
  let api: FakeApi
  let dir: string
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsr-k8s-'))
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=kube-apiserver',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'ca.crt'),
      ],
      { stdio: 'ignore' },
    )
    writeFileSync(join(dir, 'token'), `${token}\n`)
    api = await startFakeApi(
      (req) => {
        if (req.headers.authorization !== `Bearer ${token}`)
          return { status: 401, body: { kind: 'Status', message: 'Unauthorized' } }
        const list = kubernetesLists.find((l) => `/${l.path}` === req.path)
        if (!list) return undefined
        // The real API server: list items carry no kind; pages of `limit` with a continue token.
        const all = dump.items
          .filter((i) => i.kind === list.kind)
          .map(({ kind: _kind, apiVersion: _v, ...rest }) => rest)
        const limit = Number(req.query.get('limit'))
        const start = Number(req.query.get('continue') ?? 0)
        const next = start + limit < all.length ? String(start + limit) : ''
        return {
          body: {
            kind: `${list.kind}List`,
            metadata: { resourceVersion: '1', ...(next ? { continue: next } : {}) },
            items: all.slice(start, start + limit),
          },
        }
      },
      { tls: { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'ca.crt')) } },
    )
  })
  after(async () => {
    await api.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('lists every kind page by page and yields the same facts as a kubectl dump', async () => {
    const fromFile = await collect(make(createKubernetesConnector, { file }, { name: 'k8s:prod' }))
    const live = await collect(
      make(
        createKubernetesConnector,
        {
          api: api.url,
          tokenFile: join(dir, 'token'),
          caFile: join(dir, 'ca.crt'),
          pageSize: 1,
        },
        { name: 'k8s:prod' },
      ),
    )
    assert.deepEqual(live.errors, [])
    assert.deepEqual(live.invalid, [])
    const canonical = (list: readonly unknown[]) => list.map((o) => JSON.stringify(o)).sort()
    assert.ok(live.observations.length > 10)
    assert.deepEqual(canonical(live.observations), canonical(fromFile.observations))
    assert.ok(api.requests.some((r) => r.query.get('continue') !== null))
  })

  it('drops secret values from every page before parsing', async () => {
    const client = createHttpJsonClient({
      baseUrl: api.url,
      token,
      ca: readFileSync(join(dir, 'ca.crt')),
    })
    const reports: unknown[] = []
    const doc = (await fetchKubernetes(
      {
        clock: createFixedClock('2026-11-20T12:00:00Z'),
        files: nodeFileReader,
        report: (e) => reports.push(e),
      },
      client,
      2,
    )) as { items: Record<string, unknown>[] }
    const secrets = doc.items.filter((i) => i.kind === 'Secret')
    assert.ok(secrets.length > 0)
    assert.ok(
      secrets.every((s) => !('data' in s) && !('stringData' in s) && typeof s.type === 'string'),
    )
    assert.deepEqual(reports, [])
  })

  it('refuses an API server whose certificate the CA file does not vouch for', async () => {
    const r = await collect(
      make(
        createKubernetesConnector,
        { api: api.url, tokenFile: join(dir, 'token') },
        { name: 'k8s:prod' },
      ),
    )
    assert.deepEqual(r.observations, [])
    assert.ok(r.errors.length > 0)
    assert.ok(
      r.errors.every(
        (e) => e.code === 'TSR_DISCOVERY_SOURCE' && /SELF_SIGNED|self.signed/i.test(e.message),
      ),
    )
  })

  it('builds the in-cluster configuration from the pod environment', () => {
    const made = createKubernetesConnector({
      name: 'k8s:prod',
      options: { inCluster: true },
      baseDir: '/',
      env: {},
    })
    assert.equal(made.ok, false)
    assert.match(made.ok ? '' : made.problems.join(), /KUBERNETES_SERVICE_HOST is not set/)
    const ok = createKubernetesConnector({
      name: 'k8s:prod',
      options: { inCluster: true },
      baseDir: '/',
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
    })
    assert.equal(ok.ok, true)
  })
})
