import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createInventory } from '../../inventory/index.js'
import { createFixedClock } from '../../runtime/clock.js'
import { openStore, type Store } from '../../store/index.js'
import { buildApp } from '../app.js'
import { createApiToken } from '../auth/api-tokens.js'

const td = 'example.org'

describe('/v1/entries', () => {
  const clock = createFixedClock('2026-05-01T00:00:00Z')
  let store: Store
  let app: FastifyInstance
  let writer: string
  let reader: string
  before(async () => {
    store = await openStore({ backend: 'pglite' })
    app = await buildApp({ store, clock, inventory: createInventory({ store, clock }) })
    writer = (await createApiToken(store, { name: 'w', scopes: ['write'] }, clock)).token
    reader = (await createApiToken(store, { name: 'r', scopes: ['read'] }, clock)).token
  })
  after(async () => {
    await app.close()
    await store.close()
  })

  const call = (method: string, url: string, token: string, payload?: unknown) =>
    app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload: payload as object }),
    })

  it('creates, patches, deletes and reports the changes in revision order', async () => {
    const created = await call('POST', '/v1/entries', writer, {
      spiffeId: `spiffe://${td}/api`,
      parentId: `spiffe://${td}/spire/agent/x/1`,
      selectors: ['k8s:ns:prod', { type: 'k8s', value: 'sa:api' }],
      owner: 'team-api',
      expiresAt: '2026-06-01T00:00:00Z',
    })
    assert.equal(created.statusCode, 201, created.body)
    const entry = created.json<{ id: string; revision: number; expiresAt: string }>()
    assert.equal(entry.expiresAt, '2026-06-01T00:00:00.000Z')

    const patched = await call('PATCH', `/v1/entries/${entry.id}`, writer, {
      expiresAt: null,
      jwtSvidTtl: 120,
    })
    assert.equal(patched.statusCode, 200, patched.body)
    assert.equal(patched.json<{ expiresAt?: string }>().expiresAt, undefined)

    const deleted = await call('DELETE', `/v1/entries/${entry.id}`, writer)
    assert.equal(deleted.statusCode, 200)
    assert.equal((await call('GET', `/v1/entries/${entry.id}`, reader)).statusCode, 404)

    const changes = await call('GET', `/v1/entries/changes?since=${entry.revision - 1}`, reader)
    assert.equal(changes.statusCode, 200, changes.body)
    const body = changes.json<{ deltas: { op: string; revision: number }[]; more: boolean }>()
    assert.deepEqual(
      body.deltas.map((d) => d.op),
      ['upsert', 'upsert', 'delete'],
    )
    const paged = await call(
      'GET',
      `/v1/entries/changes?since=${entry.revision - 1}&limit=1`,
      reader,
    )
    assert.equal(paged.json<{ more: boolean }>().more, true)
  })

  it('refuses missing owners and bad selectors with a problem naming the field', async () => {
    const noOwner = await call('POST', '/v1/entries', writer, {
      spiffeId: `spiffe://${td}/x`,
      parentId: `spiffe://${td}/y`,
      selectors: ['unix:uid:1'],
    })
    assert.equal(noOwner.statusCode, 400)
    assert.match(noOwner.body, /owner/)
    const blankOwner = await call('POST', '/v1/entries', writer, {
      spiffeId: `spiffe://${td}/x`,
      parentId: `spiffe://${td}/y`,
      selectors: ['unix:uid:1'],
      owner: ' ',
    })
    assert.equal(blankOwner.statusCode, 400)
    assert.match(blankOwner.json<{ detail: string }>().detail, /owner: an owner is required/)
    const badSelector = await call('POST', '/v1/entries', writer, {
      spiffeId: `spiffe://${td}/x`,
      parentId: `spiffe://${td}/y`,
      selectors: ['nocolon'],
      owner: 'o',
    })
    assert.equal(badSelector.statusCode, 400)
    assert.match(badSelector.json<{ detail: string }>().detail, /TYPE:VALUE/)
    assert.equal((await call('POST', '/v1/entries', reader, {})).statusCode, 403)
  })
})
