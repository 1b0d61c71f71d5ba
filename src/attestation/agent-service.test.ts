import assert from 'node:assert/strict'
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import { SignJWT } from 'jose'
import { createEntries } from '../entries/entries.js'
import { createEntryIndex } from '../entries/entry-index.js'
import { createInventory } from '../inventory/index.js'
import { createFixedClock } from '../runtime/clock.js'
import { buildApp } from '../server/app.js'
import { openStore, type Store } from '../store/index.js'
import { createFakeCa, type FakeCa } from '../../test/support/fake-ca.js'
import { createJoinToken } from './join-tokens.js'

const td = 'example.org'

describe('agent API authentication', () => {
  const clock = createFixedClock(new Date())
  let store: Store
  let ca: FakeCa
  let app: FastifyInstance

  before(async () => {
    store = await openStore({ backend: 'pglite' })
    ca = await createFakeCa(td, clock)
    app = await buildApp({
      store,
      clock,
      inventory: createInventory({ store, clock }),
      control: { ca, pollIntervalMs: 50 },
    })
    await app.ready()
  })
  after(async () => {
    await app.close()
    await store.close()
  })

  interface Agent {
    id: string
    spiffeId: string
    chain: string[]
    key: KeyObject
  }

  async function attest(): Promise<Agent> {
    const { token } = await createJoinToken(store, {}, clock)
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const res = await app.inject({
      method: 'POST',
      url: '/v1/agent/attest',
      payload: {
        attestationType: 'join_token',
        evidence: { token },
        publicKey: key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      },
    })
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json<{
      agent: { id: string; spiffeId: string }
      svid: { certChain: string[] }
    }>()
    return { ...body.agent, chain: body.svid.certChain, key: key.privateKey }
  }

  function proof(
    a: Agent,
    method: string,
    url: string,
    over: { iat?: number; jti?: string; typ?: string; chain?: string[]; key?: KeyObject } = {},
  ) {
    return new SignJWT({ htm: method, htu: url, jti: over.jti ?? randomUUID() })
      .setProtectedHeader({
        alg: 'ES256',
        typ: over.typ ?? 'tessera-agent+jwt',
        x5c: over.chain ?? a.chain,
      })
      .setIssuedAt(over.iat ?? Math.floor(clock.now().getTime() / 1000))
      .sign(over.key ?? a.key)
  }

  const get = (url: string, p: string) =>
    app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${p}` } })

  it('accepts a fresh proof and refuses replayed, stale, misdirected or forged ones', async () => {
    const a = await attest()
    const ok = await proof(a, 'GET', '/v1/agent/bundle')
    assert.equal((await get('/v1/agent/bundle', ok)).statusCode, 200)
    const replay = await get('/v1/agent/bundle', ok)
    assert.equal(replay.statusCode, 401)
    assert.match(replay.json<{ detail: string }>().detail, /replayed/)

    const cases: [string, Promise<string>, RegExp][] = [
      [
        'stale',
        proof(a, 'GET', '/v1/agent/bundle', {
          iat: Math.floor(clock.now().getTime() / 1000) - 120,
        }),
        /expired or early/,
      ],
      ['other path', proof(a, 'GET', '/v1/agent/entries?since=0'), /another request/],
      ['other method', proof(a, 'POST', '/v1/agent/bundle'), /another request/],
      ['typ', proof(a, 'GET', '/v1/agent/bundle', { typ: 'JWT' }), /typ/],
      [
        'key',
        proof(a, 'GET', '/v1/agent/bundle', {
          key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
        }),
        /not a valid signed proof/,
      ],
      ['chain', proof(a, 'GET', '/v1/agent/bundle', { chain: ['AAAA'] }), /x5c/],
    ]
    for (const [name, p, pattern] of cases) {
      const res = await get('/v1/agent/bundle', await p)
      assert.equal(res.statusCode, 401, name)
      assert.equal(res.json<{ code: string }>().code, 'TSR_AGENT_UNAUTHENTICATED', name)
      assert.match(res.json<{ detail: string }>().detail, pattern, name)
    }
    assert.equal((await app.inject({ url: '/v1/agent/bundle' })).statusCode, 401)
  })

  it('a renewal retires the old SVID; a banned agent can neither call nor renew', async () => {
    const a = await attest()
    const next = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const renewed = await app.inject({
      method: 'POST',
      url: '/v1/agent/renew',
      headers: { authorization: `Bearer ${await proof(a, 'POST', '/v1/agent/renew')}` },
      payload: {
        publicKey: next.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      },
    })
    assert.equal(renewed.statusCode, 200, renewed.body)
    const old = await get('/v1/agent/bundle', await proof(a, 'GET', '/v1/agent/bundle'))
    assert.equal(old.statusCode, 401)
    assert.match(old.json<{ detail: string }>().detail, /not the current SVID/)
    const b: Agent = {
      ...a,
      chain: renewed.json<{ svid: { certChain: string[] } }>().svid.certChain,
      key: next.privateKey,
    }
    assert.equal(
      (await get('/v1/agent/bundle', await proof(b, 'GET', '/v1/agent/bundle'))).statusCode,
      200,
    )

    await store.db.updateTable('agent').set({ banned: true }).where('id', '=', a.id).execute()
    const banned = await get('/v1/agent/bundle', await proof(b, 'GET', '/v1/agent/bundle'))
    assert.equal(banned.statusCode, 403)
    assert.equal(banned.json<{ code: string }>().code, 'TSR_AGENT_BANNED')
  })

  it('never crashes on a hostile Authorization header', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (junk) => {
        const res = await app.inject({
          url: '/v1/agent/bundle',
          headers: { authorization: `Bearer ${junk.replace(/[^\x21-\x7e]/g, 'x') || 'x'}` },
        })
        assert.equal(res.statusCode, 401)
      }),
      { numRuns: 100 },
    )
  })
})

describe('which entries an agent gets', () => {
  it('parented to it or to a matching node alias, their descendants, never expired or cyclic', async () => {
    const store = await openStore({ backend: 'pglite' })
    const clock = createFixedClock('2026-05-01T00:00:00Z')
    try {
      const entries = createEntries({ store, clock })
      const index = createEntryIndex({ entries, pollIntervalMs: 10_000 })
      await index.start()
      const agent = {
        spiffeId: `spiffe://${td}/spire/agent/k8s/node-1`,
        selectors: [
          { type: 'k8s', value: 'cluster:prod' },
          { type: 'k8s', value: 'node:node-1' },
        ],
      }
      const mk = (spiffeId: string, parentId: string, selectors: string[], expiresAt?: Date) =>
        entries.create({
          spiffeId: `spiffe://${td}/${spiffeId}`,
          parentId: parentId.startsWith('spiffe://') ? parentId : `spiffe://${td}/${parentId}`,
          selectors: selectors.map((s) => ({
            type: s.split(':')[0]!,
            value: s.slice(s.indexOf(':') + 1),
          })),
          owner: 'o',
          ...(expiresAt ? { expiresAt } : {}),
        })
      const direct = await mk('direct', agent.spiffeId, ['unix:uid:1'])
      const alias = await mk('nodes/prod', 'spire/server', ['k8s:cluster:prod'])
      const viaAlias = await mk('via-alias', 'nodes/prod', ['k8s:ns:a'])
      const grandchild = await mk('grandchild', 'via-alias', ['unix:uid:2'])
      const otherAlias = await mk('nodes/dev', 'spire/server', ['k8s:cluster:dev'])
      const notMine = await mk('not-mine', 'nodes/dev', ['k8s:ns:b'])
      const expiring = await mk(
        'expiring',
        agent.spiffeId,
        ['unix:uid:3'],
        new Date('2026-05-02T00:00:00Z'),
      )
      // A cycle must not loop.
      await mk('loop-a', 'loop-b', ['unix:uid:4'])
      await mk('loop-b', 'loop-a', ['unix:uid:5'])
      await index.refresh()

      const now = clock.now()
      const ids = new Set(index.authorizedFor(agent, now).keys())
      assert.ok(ids.has(direct.id))
      assert.ok(ids.has(viaAlias.id))
      assert.ok(ids.has(grandchild.id))
      assert.ok(ids.has(expiring.id))
      assert.ok(!ids.has(alias.id), 'alias entries themselves are not served')
      assert.ok(!ids.has(otherAlias.id))
      assert.ok(!ids.has(notMine.id))
      assert.equal(ids.size, 4)
      const later = new Set(index.authorizedFor(agent, new Date('2026-05-03T00:00:00Z')).keys())
      assert.ok(!later.has(expiring.id))

      // Changing the alias's selectors takes its subtree away.
      const seen: string[][] = []
      index.subscribe((changed) => seen.push([...changed]))
      await entries.update(alias.id, { selectors: [{ type: 'k8s', value: 'cluster:staging' }] })
      await index.refresh()
      assert.deepEqual(seen, [[alias.id]])
      const after = new Set(index.authorizedFor(agent, now).keys())
      assert.ok(!after.has(viaAlias.id) && !after.has(grandchild.id))
      index.stop()
    } finally {
      await store.close()
    }
  })
})
