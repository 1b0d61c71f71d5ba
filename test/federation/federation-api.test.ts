import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createCertificateAuthority } from '../../src/ca/ca.js'
import { createDiskKeyManager } from '../../src/ca/key-manager.js'
import { createBundleFetcher } from '../../src/federation/bundle-fetcher.js'
import { createFederation } from '../../src/federation/federation.js'
import { createInventory } from '../../src/inventory/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { createApiToken } from '../../src/server/auth/api-tokens.js'
import { parseBundle, serializeBundle } from '../../src/spiffe/bundle.js'
import { openStore, type Store } from '../../src/store/index.js'
import { cliOn, tempDir } from '../cli/support.js'

describe('federation through the REST API and the CLI', () => {
  const clock = createFixedClock('2026-11-23T10:00:00Z')
  let store: Store
  let app: FastifyInstance
  let admin: string
  let reader: string
  let foreignBundle: string

  before(async () => {
    store = await openStore({ backend: 'pglite' })
    const ca = await createCertificateAuthority({
      store,
      keyManager: createDiskKeyManager(randomBytes(32)),
      trustDomain: 'example.org',
      clock,
    })
    const foreignStore = await openStore({ backend: 'pglite' })
    const foreign = await createCertificateAuthority({
      store: foreignStore,
      keyManager: createDiskKeyManager(randomBytes(32)),
      trustDomain: 'partner.org',
      clock,
    })
    foreignBundle = serializeBundle(await foreign.bundle())
    await foreignStore.close()
    const federation = createFederation({
      store,
      clock,
      ownTrustDomain: ca.trustDomain,
      parseBundle,
      fetchBundle: createBundleFetcher({ timeoutMs: 2000 }),
    })
    app = await buildApp({
      store,
      inventory: createInventory({ store, clock }),
      clock,
      ca,
      federation,
    })
    admin = (await createApiToken(store, { name: 'a', scopes: ['admin'] }, clock)).token
    reader = (await createApiToken(store, { name: 'r', scopes: ['read'] }, clock)).token
  })
  after(async () => {
    await app.close()
    await store.close()
  })

  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, token: string, payload?: unknown) =>
    app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload ? { payload } : {}),
    })

  it('adds (admin only), lists (read), refreshes, and removes a relationship', async () => {
    const body = {
      trustDomain: 'partner.org',
      bundleEndpointUrl: 'https://127.0.0.1:1/bundle', // nothing listens: the fetch fails
      profile: 'https_spiffe',
      endpointSpiffeId: 'spiffe://partner.org/tessera/bundle-endpoint',
      trustBundle: foreignBundle,
    }
    assert.equal((await call('POST', '/v1/federation', reader, body)).statusCode, 403)
    const created = await call('POST', '/v1/federation', admin, body)
    assert.equal(created.statusCode, 201, created.body)
    assert.equal(created.json().bundleSequence, JSON.parse(foreignBundle).spiffe_sequence)
    assert.equal((await call('POST', '/v1/federation', admin, body)).statusCode, 409)

    const list = await call('GET', '/v1/federation', reader)
    assert.deepEqual(
      list.json().items.map((i: { trustDomain: string }) => i.trustDomain),
      ['partner.org'],
    )

    const refreshed = await call('POST', '/v1/federation/partner.org/refresh', admin)
    assert.equal(refreshed.statusCode, 200)
    assert.equal(refreshed.json().outcome, 'failed')
    assert.equal(
      (await call('GET', '/v1/federation/partner.org', reader)).json().consecutiveFailures,
      1,
    )

    const bad = await call('POST', '/v1/federation', admin, {
      ...body,
      trustDomain: 'p2.org',
      endpointSpiffeId: 'spiffe://p2.org/server',
      trustBundle: '{"keys":[],"keys":[]}',
    })
    assert.equal(bad.statusCode, 422, bad.body) // duplicate keys refused by the strict bundle parser
    assert.equal((await call('DELETE', '/v1/federation/partner.org', admin)).statusCode, 204)
    assert.equal((await call('GET', '/v1/federation/partner.org', reader)).statusCode, 404)
  })

  it('the CLI manages relationships on the store, with --json', async () => {
    const cli = cliOn(store, clock)
    const file = join(tempDir(), 'partner.json')
    writeFileSync(file, foreignBundle)
    const add = await cli.run(
      'federation',
      'add',
      '--trust-domain',
      'partner.org',
      '--bundle-endpoint',
      'https://partner.org/bundle',
      '--profile',
      'https_spiffe',
      '--endpoint-spiffe-id',
      'spiffe://partner.org/spire/server',
      '--trust-bundle',
      file,
      '--json',
    )
    assert.equal(add.code, 0, add.stderr)
    assert.equal(JSON.parse(add.stdout).createdBy, 'cli:test')
    const list = await cli.run('federation', 'list')
    assert.match(list.stdout, /partner\.org\s+https_spiffe\s+https:\/\/partner\.org\/bundle/)
    const usage = await cli.run(
      'federation',
      'add',
      '--trust-domain',
      'x.org',
      '--bundle-endpoint',
      'https://x.org',
      '--profile',
      'https_spiffe',
    )
    assert.equal(usage.code, 2)
    assert.match(usage.stderr, /endpoint SPIFFE ID/)
    const missing = await cli.run('federation', 'show', 'nobody.org')
    assert.equal(missing.code, 1)
    assert.equal((await cli.run('federation', 'remove', 'partner.org')).code, 0)
  })
})
