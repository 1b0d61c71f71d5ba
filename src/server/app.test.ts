import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { testBackends } from '../../test/support/stores.js'
import { problemType } from '../errors.js'
import { createInventory } from '../inventory/index.js'
import type { Inventory } from '../inventory/inventory-types.js'
import { createFixedClock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import { buildApp } from './app.js'
import { createApiToken } from './auth/api-tokens.js'

const t0 = '2026-03-01T10:00:00.000Z'

function identity(ref: string, name: string, extra: Record<string, unknown> = {}) {
  return { type: 'identity', source: 'aws:prod', ref, kind: 'iam_role', name, ...extra }
}

function logCapture() {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString())
      callback()
    },
  })
  return { stream, text: () => chunks.join('') }
}

function assertProblem(res: LightMyRequestResponse, status: number, code: string) {
  assert.equal(res.statusCode, status, res.body)
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
  const body = res.json()
  assert.equal(body.status, status)
  assert.equal(body.code, code)
  assert.equal(body.type, problemType(code as never))
  assert.equal(typeof body.title, 'string')
  assert.equal(typeof body.detail, 'string')
  assert.equal(body.requestId, res.headers['x-request-id'])
  return body
}

for (const backend of testBackends()) {
  describe(`${backend.name}: control-plane API`, () => {
    let store: Store
    let app: FastifyInstance
    const clock = createFixedClock(t0)
    const log = logCapture()
    let admin: string
    let writer: string
    let reader: string
    const auth = (token: string) => ({ authorization: `Bearer ${token}` })

    before(async () => {
      store = await backend.open()
      app = await buildApp({
        store,
        inventory: createInventory({ store, clock }),
        clock,
        logger: { level: 'info', stream: log.stream },
      })
      admin = (await createApiToken(store, { name: 'admin', scopes: ['admin'] }, clock)).token
      writer = (await createApiToken(store, { name: 'writer', scopes: ['write'] }, clock)).token
      reader = (await createApiToken(store, { name: 'reader', scopes: ['read'] }, clock)).token
    })
    after(async () => {
      await app.close()
      await store.close()
    })

    describe('auth', () => {
      it('lets anyone reach /healthz', async () => {
        const res = await app.inject({ url: '/healthz' })
        assert.equal(res.statusCode, 200)
        assert.deepEqual(res.json(), { status: 'ok' })
      })

      it('answers 401 TSR_AUTH_MISSING with a Bearer challenge when there is no token', async () => {
        const res = await app.inject({ url: '/v1/identities' })
        assertProblem(res, 401, 'TSR_AUTH_MISSING')
        assert.match(String(res.headers['www-authenticate']), /^Bearer/)
      })

      it('answers 401 TSR_AUTH_MISSING for a non-Bearer Authorization header', async () => {
        const res = await app.inject({
          url: '/v1/identities',
          headers: { authorization: 'Basic YWRtaW46YWRtaW4=' },
        })
        assertProblem(res, 401, 'TSR_AUTH_MISSING')
      })

      it('answers 401 TSR_AUTH_INVALID for malformed, unknown and tampered tokens', async () => {
        const tampered = reader.slice(0, -2) + (reader.endsWith('AA') ? 'BB' : 'AA')
        const unknown = 'tsr_0123456789abcdef_' + 'A'.repeat(43)
        for (const token of ['nonsense', unknown, tampered]) {
          const res = await app.inject({ url: '/v1/identities', headers: auth(token) })
          assertProblem(res, 401, 'TSR_AUTH_INVALID')
          assert.match(String(res.headers['www-authenticate']), /invalid_token/)
        }
      })

      it('answers 403 TSR_AUTH_SCOPE when the token lacks the scope', async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: auth(reader),
          payload: { observations: [identity('r:1', 'one')] },
        })
        const body = assertProblem(res, 403, 'TSR_AUTH_SCOPE')
        assert.equal(body.requiredScope, 'write')
        assert.match(String(res.headers['www-authenticate']), /insufficient_scope/)
        const tokens = await app.inject({ url: '/v1/tokens', headers: auth(writer) })
        assertProblem(tokens, 403, 'TSR_AUTH_SCOPE')
      })

      it('lets a higher scope do what a lower one may (admin reads, write reads)', async () => {
        for (const token of [admin, writer, reader]) {
          const res = await app.inject({ url: '/v1/stats', headers: auth(token) })
          assert.equal(res.statusCode, 200, res.body)
        }
      })

      it('refuses an expired token', async () => {
        const short = await createApiToken(
          store,
          { name: 'short', scopes: ['read'], ttlSeconds: 60 },
          clock,
        )
        const ok = await app.inject({ url: '/v1/stats', headers: auth(short.token) })
        assert.equal(ok.statusCode, 200)
        clock.advance(61_000)
        try {
          const res = await app.inject({ url: '/v1/stats', headers: auth(short.token) })
          assertProblem(res, 401, 'TSR_AUTH_INVALID')
        } finally {
          clock.set(t0)
        }
      })
    })

    describe('request ids', () => {
      it('echoes a sane incoming X-Request-Id, also on errors', async () => {
        const ok = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123.X_y' } })
        assert.equal(ok.headers['x-request-id'], 'abc-123.X_y')
        const err = await app.inject({ url: '/v1/stats', headers: { 'x-request-id': 'req-401' } })
        assert.equal(err.headers['x-request-id'], 'req-401')
        assert.equal(err.json().requestId, 'req-401')
      })

      it('replaces an unsafe or overlong X-Request-Id with a generated one', async () => {
        for (const bad of ['has space', 'x'.repeat(129), 'new\\nline', '<script>']) {
          const res = await app.inject({ url: '/healthz', headers: { 'x-request-id': bad } })
          const id = String(res.headers['x-request-id'])
          assert.notEqual(id, bad)
          assert.match(id, /^[0-9a-f-]{36}$/)
        }
      })

      it('logs the request id as reqId and never a token', async () => {
        await app.inject({
          url: '/v1/stats',
          headers: { ...auth(reader), 'x-request-id': 'log-check-1' },
        })
        const created = await app.inject({
          method: 'POST',
          url: '/v1/tokens',
          headers: auth(admin),
          payload: { name: 'logged', scopes: ['read'] },
        })
        assert.equal(created.statusCode, 201)
        const lines = log
          .text()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
        assert.ok(lines.some((l) => l.reqId === 'log-check-1'))
        const text = log.text()
        for (const secret of [reader, admin, writer, created.json().token]) {
          assert.equal(text.includes(secret), false, 'a token reached the log')
        }
      })
    })

    describe('observations', () => {
      it('ingests a JSON batch idempotently', async () => {
        const payload = {
          observations: [
            identity('arn:aws:iam::1:role/a', 'a'),
            identity('arn:aws:iam::1:role/b', 'b'),
          ],
        }
        const first = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: auth(writer),
          payload,
        })
        assert.equal(first.statusCode, 200, first.body)
        assert.equal(first.json().received, 2)
        assert.equal(first.json().inserted, 2)
        const again = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: auth(writer),
          payload,
        })
        assert.deepEqual(again.json(), { received: 2, inserted: 0, changed: 0, unchanged: 2 })
      })

      it('ingests NDJSON, one observation per line', async () => {
        const body =
          [identity('nd:1', 'nd one'), identity('nd:2', 'nd two')]
            .map((o) => JSON.stringify(o))
            .join('\n') + '\n\n'
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: { ...auth(writer), 'content-type': 'application/x-ndjson' },
          payload: body,
        })
        assert.equal(res.statusCode, 200, res.body)
        assert.equal(res.json().inserted, 2)
      })

      it('rejects the whole batch with 422 and each bad index when an item is invalid', async () => {
        const before = (await app.inject({ url: '/v1/stats', headers: auth(reader) })).json()
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: auth(writer),
          payload: {
            observations: [
              identity('bad:ok', 'fine'),
              identity('bad:1', 'x', { kind: 'wizard' }),
              { type: 'spaceship', source: 'x' },
              42,
            ],
          },
        })
        const body = assertProblem(res, 422, 'TSR_OBSERVATION_INVALID')
        assert.deepEqual(
          body.errors.map((e: { index: number }) => e.index),
          [1, 2, 3],
        )
        for (const e of body.errors) assert.equal(typeof e.reason, 'string')
        assert.equal(body.invalidCount, 3)
        const afterStats = (await app.inject({ url: '/v1/stats', headers: auth(reader) })).json()
        assert.deepEqual(afterStats, before, 'nothing may be ingested from a rejected batch')
      })

      it('answers 400 for malformed JSON', async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: { ...auth(writer), 'content-type': 'application/json' },
          payload: '{"observations": [',
        })
        assertProblem(res, 400, 'TSR_VALIDATION')
      })

      it('answers 400 for a malformed NDJSON line, naming the line', async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: { ...auth(writer), 'content-type': 'application/x-ndjson' },
          payload: JSON.stringify(identity('l:1', 'x')) + '\n{nope\n',
        })
        const body = assertProblem(res, 400, 'TSR_VALIDATION')
        assert.equal(body.errors[0].line, 2)
      })

      it('answers 400 with the field path when the envelope has the wrong type', async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: auth(writer),
          payload: { observations: 'not a list' },
        })
        const body = assertProblem(res, 400, 'TSR_VALIDATION')
        assert.deepEqual(body.errors[0].in, 'body')
        assert.equal(body.errors[0].path, '/observations')
      })

      it('answers 400 when observations is missing, naming the field', async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: auth(writer),
          payload: {},
        })
        const body = assertProblem(res, 400, 'TSR_VALIDATION')
        assert.equal(body.errors[0].path, '/observations')
      })

      it('answers 415 for an unsupported content type', async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: { ...auth(writer), 'content-type': 'text/plain' },
          payload: 'hello',
        })
        assertProblem(res, 415, 'TSR_UNSUPPORTED_MEDIA_TYPE')
      })

      it('checks the token before reading the body', async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: { 'content-type': 'application/json' },
          payload: '{"observations": [',
        })
        assertProblem(res, 401, 'TSR_AUTH_MISSING')
      })
    })

    describe('identities', () => {
      before(async () => {
        const observations = Array.from({ length: 5 }, (_, i) =>
          identity(`page:${i}`, `paged-${i}`, { source: 'paging' }),
        )
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: auth(writer),
          payload: { observations },
        })
        assert.equal(res.statusCode, 200, res.body)
      })

      it('pages through a filtered list with the cursor', async () => {
        const seen: string[] = []
        let cursor: string | undefined
        let pages = 0
        do {
          const query = new URLSearchParams({ source: 'paging', limit: '2' })
          if (cursor) query.set('cursor', cursor)
          const res = await app.inject({ url: `/v1/identities?${query}`, headers: auth(reader) })
          assert.equal(res.statusCode, 200, res.body)
          const page = res.json()
          assert.ok(page.items.length <= 2)
          seen.push(...page.items.map((i: { ref: string }) => i.ref))
          cursor = page.nextCursor
          pages++
        } while (cursor && pages < 10)
        assert.deepEqual([...seen].sort(), ['page:0', 'page:1', 'page:2', 'page:3', 'page:4'])
        assert.ok(pages >= 3)
      })

      it('answers 400 with the field path for an out-of-range limit or a bad date', async () => {
        const res = await app.inject({ url: '/v1/identities?limit=0', headers: auth(reader) })
        const body = assertProblem(res, 400, 'TSR_VALIDATION')
        assert.deepEqual(
          { in: body.errors[0].in, path: body.errors[0].path },
          { in: 'querystring', path: '/limit' },
        )
        const at = await app.inject({ url: '/v1/identities?at=yesterday', headers: auth(reader) })
        assert.equal(assertProblem(at, 400, 'TSR_VALIDATION').errors[0].path, '/at')
        const kind = await app.inject({ url: '/v1/identities?kind=wizard', headers: auth(reader) })
        assertProblem(kind, 400, 'TSR_VALIDATION')
      })

      it('answers 400 for an unknown query parameter, naming the limit in the detail', async () => {
        const res = await app.inject({ url: '/v1/identities?colour=red', headers: auth(reader) })
        assert.deepEqual(assertProblem(res, 400, 'TSR_VALIDATION').errors, [
          { in: 'querystring', path: '/colour', message: 'is not allowed' },
        ])
        const big = await app.inject({ url: '/v1/identities?limit=5000', headers: auth(reader) })
        const body = assertProblem(big, 400, 'TSR_VALIDATION')
        assert.match(body.detail, /^querystring\/limit /)
      })

      it('answers 400 for a forged cursor', async () => {
        const res = await app.inject({
          url: '/v1/identities?cursor=not-a-cursor',
          headers: auth(reader),
        })
        assertProblem(res, 400, 'TSR_VALIDATION')
      })

      it('shows an identity by URL-encoded ref, and 404 when absent', async () => {
        const ref = 'arn:aws:iam::1:role/a'
        const res = await app.inject({
          url: `/v1/identities/${encodeURIComponent(ref)}`,
          headers: auth(reader),
        })
        assert.equal(res.statusCode, 200, res.body)
        assert.equal(res.json().ref, ref)
        assert.ok(Array.isArray(res.json().credentials))
        const missing = await app.inject({ url: '/v1/identities/nope:1', headers: auth(reader) })
        assertProblem(missing, 404, 'TSR_NOT_FOUND')
      })

      it('answers as of a past instant', async () => {
        clock.set('2026-03-02T00:00:00.000Z')
        try {
          const post = (name: string) =>
            app.inject({
              method: 'POST',
              url: '/v1/observations',
              headers: auth(writer),
              payload: { observations: [identity('asof:1', name)] },
            })
          assert.equal((await post('before')).statusCode, 200)
          clock.set('2026-03-03T00:00:00.000Z')
          assert.equal((await post('after')).json().changed, 1)
          const now = await app.inject({ url: '/v1/identities/asof:1', headers: auth(reader) })
          assert.equal(now.json().name, 'after')
          const past = await app.inject({
            url: '/v1/identities/asof:1?at=2026-03-02T12:00:00Z',
            headers: auth(reader),
          })
          assert.equal(past.statusCode, 200, past.body)
          assert.equal(past.json().name, 'before')
          const listed = await app.inject({
            url: '/v1/identities?q=before&at=2026-03-02T12:00:00Z',
            headers: auth(reader),
          })
          assert.deepEqual(
            listed.json().items.map((i: { ref: string }) => i.ref),
            ['asof:1'],
          )
          const beforeItExisted = await app.inject({
            url: '/v1/identities/asof:1?at=2026-03-01T00:00:00Z',
            headers: auth(reader),
          })
          assertProblem(beforeItExisted, 404, 'TSR_NOT_FOUND')
        } finally {
          clock.set(t0)
        }
      })
    })

    describe('graph, runs, export, stats', () => {
      it('walks the graph from a node, 404 for an absent one, 400 for an unknown edge type', async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: auth(writer),
          payload: {
            observations: [
              identity('g:1', 'graph one'),
              { type: 'owner', source: 'hr', ref: 'ops', ownerType: 'team', name: 'Ops' },
              {
                type: 'edge',
                source: 'hr',
                edgeType: 'owns',
                from: { type: 'owner', ref: 'ops' },
                to: { type: 'identity', ref: 'g:1' },
              },
            ],
          },
        })
        assert.equal(res.statusCode, 200, res.body)
        const graph = await app.inject({ url: '/v1/graph?node=g:1&depth=1', headers: auth(reader) })
        assert.equal(graph.statusCode, 200, graph.body)
        const refs = graph.json().nodes.map((n: { ref: string }) => n.ref)
        assert.ok(refs.includes('g:1') && refs.includes('ops'), refs.join(','))
        const missing = await app.inject({ url: '/v1/graph?node=none:1', headers: auth(reader) })
        assertProblem(missing, 404, 'TSR_NOT_FOUND')
        const badType = await app.inject({
          url: '/v1/graph?node=g:1&edgeTypes=owns,teleports',
          headers: auth(reader),
        })
        assertProblem(badType, 400, 'TSR_VALIDATION')
      })

      it('starts and finishes a discovery run, and refuses to finish it twice', async () => {
        const started = await app.inject({
          method: 'POST',
          url: '/v1/runs',
          headers: auth(writer),
          payload: { source: 'runs-test', scope: 'full' },
        })
        assert.equal(started.statusCode, 201, started.body)
        const run = started.json()
        assert.equal(run.status, 'running')
        const ingest = await app.inject({
          method: 'POST',
          url: '/v1/observations',
          headers: auth(writer),
          payload: {
            observations: [identity('run:1', 'r', { source: 'runs-test' })],
            runs: { 'runs-test': run.id },
          },
        })
        assert.equal(ingest.statusCode, 200, ingest.body)
        const finished = await app.inject({
          method: 'POST',
          url: `/v1/runs/${run.id}/finish`,
          headers: auth(writer),
          payload: { outcome: 'succeeded' },
        })
        assert.equal(finished.statusCode, 200, finished.body)
        assert.equal(finished.json().status, 'succeeded')
        // No body at all is accepted (it means succeeded); the run is finished already.
        const again = await app.inject({
          method: 'POST',
          url: `/v1/runs/${run.id}/finish`,
          headers: auth(writer),
        })
        assertProblem(again, 409, 'TSR_CONFLICT')
        const unknown = await app.inject({
          method: 'POST',
          url: '/v1/runs/00000000-0000-4000-8000-000000000000/finish',
          headers: auth(writer),
          payload: {},
        })
        assertProblem(unknown, 404, 'TSR_NOT_FOUND')
      })

      it('ties an NDJSON batch to a run through the run query parameter', async () => {
        const run = (
          await app.inject({
            method: 'POST',
            url: '/v1/runs',
            headers: auth(writer),
            payload: { source: 'nd-runs', scope: 'full' },
          })
        ).json()
        const post = (ref: string) =>
          app.inject({
            method: 'POST',
            url: `/v1/observations?run=${encodeURIComponent(`nd-runs=${run.id}`)}`,
            headers: { ...auth(writer), 'content-type': 'application/x-ndjson' },
            payload: JSON.stringify(identity(ref, ref, { source: 'nd-runs' })),
          })
        assert.equal((await post('ndr:1')).statusCode, 200)
        await app.inject({
          method: 'POST',
          url: `/v1/runs/${run.id}/finish`,
          headers: auth(writer),
          payload: {},
        })
        // A second full run that sees only ndr:2 closes ndr:1, which proves the first batch was
        // counted in its run.
        const second = (
          await app.inject({
            method: 'POST',
            url: '/v1/runs',
            headers: auth(writer),
            payload: { source: 'nd-runs', scope: 'full' },
          })
        ).json()
        const res = await app.inject({
          method: 'POST',
          url: `/v1/observations?run=nd-runs=${second.id}`,
          headers: { ...auth(writer), 'content-type': 'application/x-ndjson' },
          payload: JSON.stringify(identity('ndr:2', 'two', { source: 'nd-runs' })),
        })
        assert.equal(res.statusCode, 200, res.body)
        const finished = await app.inject({
          method: 'POST',
          url: `/v1/runs/${second.id}/finish`,
          headers: auth(writer),
          payload: {},
        })
        assert.equal(finished.json().closed, 1, finished.body)
        const gone = await app.inject({ url: '/v1/identities/ndr:1', headers: auth(reader) })
        assertProblem(gone, 404, 'TSR_NOT_FOUND')
      })

      it('exports NDJSON observations that name what was ingested', async () => {
        const res = await app.inject({ url: '/v1/export', headers: auth(reader) })
        assert.equal(res.statusCode, 200)
        assert.match(String(res.headers['content-type']), /^application\/x-ndjson/)
        const lines = res.body
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
        assert.ok(lines.some((o) => o.type === 'identity' && o.ref === 'g:1'))
        assert.ok(lines.some((o) => o.type === 'owner' && o.ref === 'ops'))
      })

      it('exports as of a past instant', async () => {
        const res = await app.inject({
          url: '/v1/export?at=2026-03-02T12:00:00Z',
          headers: auth(reader),
        })
        const names = res.body
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
          .filter((o) => o.ref === 'asof:1')
          .map((o) => o.name)
        assert.deepEqual(names, ['before'])
      })

      it('counts the current facts', async () => {
        const res = await app.inject({ url: '/v1/stats', headers: auth(reader) })
        assert.equal(res.statusCode, 200)
        assert.ok(res.json().identity >= 10, res.body)
      })
    })

    describe('tokens', () => {
      it('creates, lists (without secrets), uses and revokes a token', async () => {
        const created = await app.inject({
          method: 'POST',
          url: '/v1/tokens',
          headers: auth(admin),
          payload: { name: 'ci-reader', scopes: ['read'], ttlSeconds: 3600 },
        })
        assert.equal(created.statusCode, 201, created.body)
        const token = created.json()
        assert.match(token.token, /^tsr_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
        assert.deepEqual(token.scopes, ['read'])
        assert.equal(token.expiresAt, new Date(Date.parse(t0) + 3600_000).toISOString())

        const list = await app.inject({ url: '/v1/tokens', headers: auth(admin) })
        assert.equal(list.statusCode, 200)
        assert.equal(list.body.includes(token.token), false)
        assert.equal(list.body.includes('hash'), false)
        const listed = list.json().items.find((t: { id: string }) => t.id === token.id)
        assert.equal(listed.name, 'ci-reader')
        assert.equal(listed.revokedAt, null)

        const used = await app.inject({ url: '/v1/stats', headers: auth(token.token) })
        assert.equal(used.statusCode, 200)

        const revoked = await app.inject({
          method: 'DELETE',
          url: `/v1/tokens/${token.id}`,
          headers: auth(admin),
        })
        assert.equal(revoked.statusCode, 204)
        assert.equal(revoked.body, '')
        const refused = await app.inject({ url: '/v1/stats', headers: auth(token.token) })
        assertProblem(refused, 401, 'TSR_AUTH_INVALID')
        const relisted = (await app.inject({ url: '/v1/tokens', headers: auth(admin) })).json()
        assert.notEqual(
          relisted.items.find((t: { id: string }) => t.id === token.id).revokedAt,
          null,
        )
      })

      it('validates token requests and answers 404 for an unknown id', async () => {
        const badScope = await app.inject({
          method: 'POST',
          url: '/v1/tokens',
          headers: auth(admin),
          payload: { name: 'x', scopes: ['root'] },
        })
        assertProblem(badScope, 400, 'TSR_VALIDATION')
        const noScopes = await app.inject({
          method: 'POST',
          url: '/v1/tokens',
          headers: auth(admin),
          payload: { name: 'x', scopes: [] },
        })
        assertProblem(noScopes, 400, 'TSR_VALIDATION')
        const missing = await app.inject({
          method: 'DELETE',
          url: '/v1/tokens/0123456789abcdef',
          headers: auth(admin),
        })
        assertProblem(missing, 404, 'TSR_NOT_FOUND')
      })
    })

    describe('routing errors and metrics', () => {
      it('answers 404 problem for an unknown route and 405 with Allow for a wrong method', async () => {
        const missing = await app.inject({ url: '/v1/nothing-here' })
        assertProblem(missing, 404, 'TSR_NOT_FOUND')
        const wrong = await app.inject({ method: 'DELETE', url: '/v1/identities' })
        assertProblem(wrong, 405, 'TSR_METHOD_NOT_ALLOWED')
        assert.match(String(wrong.headers.allow), /GET/)
        const param = await app.inject({ method: 'PUT', url: '/v1/tokens/abc' })
        assertProblem(param, 405, 'TSR_METHOD_NOT_ALLOWED')
        assert.equal(param.headers.allow, 'DELETE')
      })

      it('serves Prometheus metrics with http and inventory series', async () => {
        await app.inject({ url: '/healthz' })
        const res = await app.inject({ url: '/metrics' })
        assert.equal(res.statusCode, 200)
        assert.match(res.body, /http_request_duration_seconds_bucket\{.*route="\/healthz".*\}/)
        assert.match(res.body, /http_request_duration_seconds_count\{.*status_code="401"/)
        assert.match(res.body, /tessera_inventory_facts\{table="identity"\} \d+/)
        assert.match(res.body, /process_cpu_user_seconds_total/)
      })

      it('serves the OpenAPI document and the docs UI publicly', async () => {
        const res = await app.inject({ url: '/openapi.json' })
        assert.equal(res.statusCode, 200)
        const doc = res.json()
        assert.match(doc.openapi, /^3\./)
        assert.ok(doc.paths['/v1/identities'].get.security)
        assert.equal(doc.components.securitySchemes.bearerAuth.scheme, 'bearer')
        const ui = await app.inject({ url: '/docs' })
        assert.ok(ui.statusCode === 200 || ui.statusCode === 302, String(ui.statusCode))
      })
    })
  })
}

describe('control-plane API failure paths', () => {
  const [backend] = testBackends()

  it('answers a bug with a generic 500 problem: no message, no stack', async () => {
    const store = await backend!.open()
    const secretMessage = 'connection to db-internal.corp:5432 failed for user tessera_admin'
    const failing: Inventory = {
      ...createInventory({ store }),
      stats: async () => {
        throw new Error(secretMessage)
      },
    }
    const app = await buildApp({ store, inventory: failing })
    const { token } = await createApiToken(store, { name: 'r', scopes: ['read'] })
    try {
      const res = await app.inject({
        url: '/v1/stats',
        headers: { authorization: `Bearer ${token}` },
      })
      const body = assertProblem(res, 500, 'TSR_INTERNAL')
      assert.equal(res.body.includes('db-internal'), false)
      assert.equal(res.body.includes('Error:'), false)
      assert.equal(res.body.includes('.ts:'), false)
      assert.equal(body.stack, undefined)
      assert.equal(body.cause, undefined)
    } finally {
      await app.close()
      await store.close()
    }
  })

  it('answers 413 TSR_PAYLOAD_TOO_LARGE over the body limit', async () => {
    const store = await backend!.open()
    const app = await buildApp({ store, inventory: createInventory({ store }), bodyLimit: 1024 })
    const { token } = await createApiToken(store, { name: 'w', scopes: ['write'] })
    try {
      const observations = Array.from({ length: 50 }, (_, i) => identity(`big:${i}`, `big-${i}`))
      const res = await app.inject({
        method: 'POST',
        url: '/v1/observations',
        headers: { authorization: `Bearer ${token}` },
        payload: { observations },
      })
      assertProblem(res, 413, 'TSR_PAYLOAD_TOO_LARGE')
    } finally {
      await app.close()
      await store.close()
    }
  })

  it('answers /readyz 503 when the store is closed, and 200 while it is open', async () => {
    const store = await backend!.open()
    const app = await buildApp({ store, inventory: createInventory({ store }) })
    try {
      assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200)
      await store.close()
      const res = await app.inject({ url: '/readyz' })
      const body = assertProblem(res, 503, 'TSR_STORE_UNAVAILABLE')
      assert.equal(body.detail, 'the store is unavailable; try again later')
      // Liveness does not depend on the store.
      assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200)
    } finally {
      await app.close()
      await store.close()
    }
  })

  it('requires a token for /metrics when configured to', async () => {
    const store = await backend!.open()
    const app = await buildApp({
      store,
      inventory: createInventory({ store }),
      metricsRequireToken: true,
    })
    const { token } = await createApiToken(store, { name: 'r', scopes: ['read'] })
    try {
      assertProblem(await app.inject({ url: '/metrics' }), 401, 'TSR_AUTH_MISSING')
      const ok = await app.inject({
        url: '/metrics',
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(ok.statusCode, 200)
    } finally {
      await app.close()
      await store.close()
    }
  })
})

describe('control-plane API over a real socket', () => {
  const [backend] = testBackends()

  it('lets an in-flight request finish when the app closes', async () => {
    const store = await backend!.open()
    let entered!: () => void
    const inHandler = new Promise<void>((resolve) => (entered = resolve))
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const real = createInventory({ store })
    const slow: Inventory = {
      ...real,
      stats: async () => {
        entered()
        await released
        return real.stats()
      },
    }
    const app = await buildApp({ store, inventory: slow })
    const { token } = await createApiToken(store, { name: 'r', scopes: ['read'] })
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 })
      const response = fetch(`${url}/v1/stats`, { headers: { authorization: `Bearer ${token}` } })
      await inHandler
      const closed = app.close()
      release()
      const res = await response
      assert.equal(res.status, 200)
      assert.equal(typeof ((await res.json()) as { identity: unknown }).identity, 'number')
      assert.ok(res.headers.get('x-request-id'))
      await closed
      await assert.rejects(fetch(`${url}/healthz`))
    } finally {
      await app.close()
      await store.close()
    }
  })
})
