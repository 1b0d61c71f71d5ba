import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { describe, it } from 'node:test'
import { isTesseraError } from '../errors.js'
import { createRemoteClient, isInsecureRemote, ndjsonLines, normaliseServerUrl } from './remote.js'

interface Seen {
  method: string
  url: URL
  headers: Record<string, string>
  body: unknown
}

/** A fetch that answers from a routing function and records what it was asked. */
function fakeFetch(route: (req: Seen) => Response) {
  const seen: Seen[] = []
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const req: Seen = {
      method: init?.method ?? 'GET',
      url: new URL(String(input)),
      headers: (init?.headers ?? {}) as Record<string, string>,
      body: init?.body === undefined ? undefined : JSON.parse(String(init.body)),
    }
    seen.push(req)
    return route(req)
  }) as typeof fetch
  return { fetch: f, seen }
}

const json = (status: number, body: unknown, type = 'application/json') =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': type } })
const problem = (status: number, code: string, detail: string, extra: object = {}) =>
  json(
    status,
    { type: 'x', title: 't', status, detail, code, requestId: 'req-1', ...extra },
    'application/problem+json',
  )

describe('createRemoteClient', () => {
  it('sends the bearer token and encodes the filter as the query', async () => {
    const f = fakeFetch(() => json(200, { items: [], nextCursor: 'c2' }))
    const client = createRemoteClient({
      server: 'http://h:1/base/',
      token: 'tsr_a_b',
      fetch: f.fetch,
    })
    const page = await client.inventory.listIdentities({
      kind: 'iam_role',
      q: 'a&b',
      unusedSince: new Date('2026-01-01T00:00:00Z'),
      limit: 50,
    })
    assert.deepEqual(page, { items: [], nextCursor: 'c2' })
    const req = f.seen[0]!
    assert.equal(req.url.pathname, '/base/v1/identities')
    assert.equal(req.url.searchParams.get('kind'), 'iam_role')
    assert.equal(req.url.searchParams.get('q'), 'a&b')
    assert.equal(req.url.searchParams.get('unusedSince'), '2026-01-01T00:00:00.000Z')
    assert.equal(req.url.searchParams.get('limit'), '50')
    assert.equal(req.url.searchParams.has('cursor'), false)
    assert.equal(req.headers.authorization, 'Bearer tsr_a_b')
  })

  it('maps problem+json to a TesseraError with the server code and details', async () => {
    const f = fakeFetch(() => problem(403, 'TSR_AUTH_SCOPE', 'this route needs the write scope'))
    const client = createRemoteClient({ server: 'http://h:1', token: 't', fetch: f.fetch })
    await assert.rejects(client.inventory.ingest([]), (err) => {
      assert.ok(isTesseraError(err, 'TSR_AUTH_SCOPE'))
      assert.equal(err.message, 'this route needs the write scope')
      assert.equal(err.details?.requestId, 'req-1')
      return true
    })
  })

  it('keeps the per-item errors of a 422 rejection', async () => {
    const f = fakeFetch(() =>
      problem(422, 'TSR_OBSERVATION_INVALID', 'invalid', {
        errors: [{ index: 1, reason: 'kind: bad' }],
      }),
    )
    const client = createRemoteClient({ server: 'http://h:1', fetch: f.fetch })
    await assert.rejects(client.inventory.ingest([]), (err) => {
      assert.ok(isTesseraError(err, 'TSR_OBSERVATION_INVALID'))
      assert.deepEqual(err.details?.errors, [{ index: 1, reason: 'kind: bad' }])
      return true
    })
  })

  it('answers undefined for a 404 identity or graph node, with the id path-encoded', async () => {
    const f = fakeFetch(() => problem(404, 'TSR_NOT_FOUND', 'no such identity'))
    const client = createRemoteClient({ server: 'http://h:1', fetch: f.fetch })
    assert.equal(
      await client.inventory.getIdentity('arn:aws:iam::1:role/a b', new Date('2026-01-01Z')),
      undefined,
    )
    assert.equal(f.seen[0]!.url.pathname, '/v1/identities/arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b')
    assert.equal(f.seen[0]!.url.searchParams.get('at'), '2026-01-01T00:00:00.000Z')
    assert.equal(
      await client.inventory.neighbourhood('x', { edgeTypes: ['owns', 'runs_as'], depth: 3 }),
      undefined,
    )
    assert.equal(f.seen[1]!.url.searchParams.get('edgeTypes'), 'owns,runs_as')
  })

  it('turns a non-problem error page into TSR_CLIENT_HTTP with the status', async () => {
    const f = fakeFetch(
      () => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
    )
    const client = createRemoteClient({ server: 'http://h:1', fetch: f.fetch })
    await assert.rejects(
      client.inventory.stats(),
      (err) => isTesseraError(err, 'TSR_CLIENT_HTTP') && /502/.test(err.message),
    )
  })

  it('says it cannot reach a server that is not there', async () => {
    // A port that was free a moment ago: real fetch, real ECONNREFUSED.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port
        s.close(() => resolve(p))
      })
    })
    const client = createRemoteClient({ server: `http://127.0.0.1:${port}` })
    await assert.rejects(client.inventory.stats(), (err) => {
      assert.ok(isTesseraError(err, 'TSR_CLIENT_HTTP'))
      assert.match(err.message, new RegExp(`cannot reach server at http://127.0.0.1:${port}`))
      return true
    })
  })

  it('streams the NDJSON export', async () => {
    const lines = [
      { type: 'owner', ref: 'a' },
      { type: 'owner', ref: 'b' },
    ]
    const f = fakeFetch(() => new Response(lines.map((l) => JSON.stringify(l)).join('\n') + '\n'))
    const client = createRemoteClient({ server: 'http://h:1', fetch: f.fetch })
    const got = []
    for await (const o of client.inventory.exportObservations({ at: new Date('2026-01-01Z') }))
      got.push(o)
    assert.deepEqual(got, lines)
  })

  it('lists tokens from {items} and revokes with DELETE', async () => {
    const f = fakeFetch((req) =>
      req.method === 'DELETE'
        ? new Response(null, { status: 204 })
        : json(200, { items: [{ id: 'a', name: 'n', scopes: ['read'] }] }),
    )
    const client = createRemoteClient({ server: 'http://h:1', token: 't', fetch: f.fetch })
    assert.deepEqual(await client.tokens.list(), [{ id: 'a', name: 'n', scopes: ['read'] }])
    await client.tokens.revoke('abc')
    assert.equal(f.seen[1]!.method, 'DELETE')
    assert.equal(f.seen[1]!.url.pathname, '/v1/tokens/abc')
  })
})

describe('ndjsonLines', () => {
  it('reassembles lines split across chunks and multi-byte characters', async () => {
    const bytes = new TextEncoder().encode('{"a":"é"}\n\n{"b":2}\r\n{"c":3}')
    const chunks = [bytes.slice(0, 7), bytes.slice(7, 13), bytes.slice(13)]
    const out: string[] = []
    for await (const l of ndjsonLines(
      (async function* () {
        yield* chunks
      })(),
    ))
      out.push(l)
    assert.deepEqual(out, ['{"a":"é"}', '{"b":2}', '{"c":3}'])
  })
})

describe('server URLs', () => {
  it('normalises and flags plain http off the loopback', () => {
    assert.equal(normaliseServerUrl('http://h:8750/'), 'http://h:8750')
    assert.equal(isInsecureRemote('http://127.0.0.1:8750'), false)
    assert.equal(isInsecureRemote('http://[::1]:8750'), false)
    assert.equal(isInsecureRemote('http://localhost:8750'), false)
    assert.equal(isInsecureRemote('https://tessera.example'), false)
    assert.equal(isInsecureRemote('http://tessera.example'), true)
  })
})
