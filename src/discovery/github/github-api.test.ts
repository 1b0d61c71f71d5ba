import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { collect, make } from '../testing/collect.js'
import { linkPaged, startFakeApi, type FakeApi } from '../testing/fake-api.js'
import { createGithubConnector } from './github-connector.js'
import { nextLink } from '../live/pagination.js'

const file = new URL('../../../examples/github/acme-org.json', import.meta.url).pathname
const sample = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
const token = 'ghs_fakeTokenForTheLiveModeTest0001'

/** The sample export served as the REST API, two items a page so paging is exercised. */
function githubApi(options: { forbidPats?: boolean } = {}) {
  return startFakeApi((req, base) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      return { status: 401, body: { message: 'Bad credentials' } }
    }
    req.query.set('per_page', '2')
    const key = req.path.replace(/^\//, '')
    if (key === 'orgs/acme/repos') return linkPaged(req, base, [{ full_name: 'acme/payments' }])
    if (key === 'orgs/acme/personal-access-tokens' && options.forbidPats) {
      return { status: 403, body: { message: 'Resource not accessible by integration' } }
    }
    const value = sample[key]
    if (value === undefined) return key.startsWith('repos/') ? linkPaged(req, base, []) : undefined
    if (Array.isArray(value)) return linkPaged(req, base, value)
    const [field, list] = Object.entries(value as Record<string, unknown[]>).find(([, v]) =>
      Array.isArray(v),
    )!
    return linkPaged(req, base, list, (page) => ({ total_count: list.length, [field]: page }))
  })
}

describe('github connector, live API', () => {
  let api: FakeApi
  before(async () => {
    api = await githubApi()
  })
  after(() => api.close())

  it('reads the organisation through the REST API into the same facts as its export', async () => {
    const fromFile = await collect(make(createGithubConnector, { file }, { name: 'github:acme' }))
    const live = await collect(
      make(
        createGithubConnector,
        { api: api.url, org: 'acme', tokenEnv: 'GH_TOKEN' },
        { name: 'github:acme', env: { GH_TOKEN: token } },
      ),
    )
    assert.deepEqual(live.errors, [])
    assert.deepEqual(live.invalid, [])
    const canonical = (list: readonly unknown[]) => list.map((o) => JSON.stringify(o)).sort()
    assert.ok(live.observations.length > 20)
    assert.deepEqual(canonical(live.observations), canonical(fromFile.observations))
    // Paging was followed: some list was served in more than one page.
    assert.ok(api.requests.some((r) => r.query.get('page') === '2'))
  })

  it('reports an endpoint the token may not read and keeps the rest', async () => {
    const limited = await githubApi({ forbidPats: true })
    try {
      const r = await collect(
        make(
          createGithubConnector,
          { api: limited.url, org: 'acme', tokenEnv: 'GH_TOKEN' },
          { name: 'github:acme', env: { GH_TOKEN: token } },
        ),
      )
      assert.equal(r.errors.length, 1)
      assert.equal(r.errors[0]!.code, 'TSR_DISCOVERY_SOURCE')
      assert.match(
        r.errors[0]!.message,
        /personal-access-tokens: HTTP 403: Resource not accessible/,
      )
      assert.ok(!r.errors[0]!.message.includes(token))
      assert.ok(
        r.observations.some(
          (o) => o.type === 'identity' && o.ref.startsWith('github:installation:'),
        ),
      )
    } finally {
      await limited.close()
    }
  })

  it('names a bad token as the API said it, never the token', async () => {
    const r = await collect(
      make(
        createGithubConnector,
        { api: api.url, org: 'acme', tokenEnv: 'GH_TOKEN' },
        { name: 'github:acme', env: { GH_TOKEN: 'wrong' } },
      ),
    )
    const sourceErrors = r.errors.filter((e) => e.code === 'TSR_DISCOVERY_SOURCE')
    assert.ok(sourceErrors.length >= 1)
    assert.ok(sourceErrors.every((e) => /HTTP 401: Bad credentials/.test(e.message)))
    assert.deepEqual(r.observations, [])
    assert.ok(r.errors.every((e) => !e.message.includes('wrong')))
  })

  it('refuses options that mix or miss inputs, and a token over plain http to another host', () => {
    const problems = (options: Record<string, unknown>, env = {}) => {
      const made = createGithubConnector({ name: 'github:x', options, baseDir: '/', env })
      return made.ok ? [] : made.problems
    }
    assert.match(
      problems({ file, api: 'https://api.github.com', org: 'a' }).join(),
      /give one, not both/,
    )
    assert.match(problems({}).join(), /file or api: give one/)
    assert.match(problems({ api: 'https://api.github.com' }).join(), /org: required with api/)
    assert.match(
      problems({ api: 'https://h', org: 'a', tokenEnv: 'NOPE' }).join(),
      /NOPE is not set/,
    )
    assert.match(problems({ file, tokenEnv: 'X' }, { X: 'y' }).join(), /tokenEnv: only with api/)
  })

  it('parses Link headers', () => {
    assert.equal(
      nextLink(
        '<https://api.github.com/x?page=3>; rel="next", <https://api.github.com/x?page=9>; rel="last"',
      ),
      'https://api.github.com/x?page=3',
    )
    assert.equal(nextLink('<https://a/x?page=1>; rel="prev"'), undefined)
    assert.equal(nextLink(undefined), undefined)
  })
})
