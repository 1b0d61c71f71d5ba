import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { testBackends } from '../../../test/support/stores.js'
import { isTesseraError } from '../../errors.js'
import { createFixedClock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import {
  createApiToken,
  ensureAdminToken,
  hashToken,
  listApiTokens,
  revokeApiToken,
  scopeAllows,
  verifyApiToken,
} from './api-tokens.js'

describe('scopeAllows', () => {
  it('nests admin over write over read', () => {
    assert.equal(scopeAllows(['admin'], 'read'), true)
    assert.equal(scopeAllows(['admin'], 'write'), true)
    assert.equal(scopeAllows(['write'], 'read'), true)
    assert.equal(scopeAllows(['write'], 'admin'), false)
    assert.equal(scopeAllows(['read'], 'write'), false)
    assert.equal(scopeAllows([], 'read'), false)
  })
})

for (const backend of testBackends()) {
  describe(`${backend.name}: api tokens`, () => {
    let store: Store
    const clock = createFixedClock('2026-04-01T00:00:00.000Z')
    before(async () => {
      store = await backend.open()
    })
    after(async () => {
      await store.close()
    })

    it('stores only a hash of the token, never the token', async () => {
      const created = await createApiToken(store, { name: 'ci', scopes: ['read', 'write'] }, clock)
      const row = await store.db
        .selectFrom('api_token')
        .selectAll()
        .where('id', '=', created.id)
        .executeTakeFirstOrThrow()
      assert.equal(row.token_hash, hashToken(created.token))
      assert.equal(JSON.stringify(row).includes(created.token.split('_').at(-1)!), false)
      assert.deepEqual(row.scopes, ['read', 'write'])
    })

    it('verifies a good token and records its use', async () => {
      const created = await createApiToken(store, { name: 'use', scopes: ['read'] }, clock)
      const result = await verifyApiToken(store, created.token, clock)
      assert.deepEqual(result, {
        ok: true,
        token: { id: created.id, name: 'use', scopes: ['read'] },
      })
      const listed = (await listApiTokens(store)).find((t) => t.id === created.id)
      assert.equal(listed?.lastUsedAt, clock.now().toISOString())
      assert.equal(JSON.stringify(listed).includes(created.token), false)
    })

    it('refuses malformed, unknown, wrong-secret, expired and revoked tokens', async () => {
      const created = await createApiToken(
        store,
        { name: 'life', scopes: ['read'], ttlSeconds: 3600 },
        clock,
      )
      const wrongSecret = created.token.replace(/_[^_]{4}/, '_AAAA')
      assert.deepEqual(await verifyApiToken(store, 'Bearer x', clock), {
        ok: false,
        reason: 'malformed',
      })
      assert.deepEqual(
        await verifyApiToken(store, `tsr_ffffffffffffffff_${'A'.repeat(43)}`, clock),
        {
          ok: false,
          reason: 'unknown',
        },
      )
      assert.equal((await verifyApiToken(store, wrongSecret, clock)).ok, false)

      const later = createFixedClock(new Date(clock.now().getTime() + 3600_000))
      assert.deepEqual(await verifyApiToken(store, created.token, later), {
        ok: false,
        reason: 'expired',
      })

      const other = await createApiToken(store, { name: 'gone', scopes: ['read'] }, clock)
      const revoked = await revokeApiToken(store, other.id, clock)
      assert.equal(revoked.revokedAt, clock.now().toISOString())
      assert.deepEqual(await verifyApiToken(store, other.token, clock), {
        ok: false,
        reason: 'revoked',
      })
      // Revoking again keeps the first revocation time.
      const again = await revokeApiToken(store, other.id, later)
      assert.equal(again.revokedAt, clock.now().toISOString())
    })

    it('rejects bad names, scopes and ttls, and unknown ids on revoke', async () => {
      const cases: Array<Parameters<typeof createApiToken>[1]> = [
        { name: '', scopes: ['read'] },
        { name: 'has space', scopes: ['read'] },
        { name: 'x', scopes: [] },
        { name: 'x', scopes: ['root' as never] },
        { name: 'x', scopes: ['read'], ttlSeconds: 1 },
        { name: 'x', scopes: ['read'], ttlSeconds: 1.5 },
      ]
      for (const input of cases) {
        await assert.rejects(createApiToken(store, input, clock), (err) =>
          isTesseraError(err, 'TSR_VALIDATION'),
        )
      }
      await assert.rejects(revokeApiToken(store, 'nope', clock), (err) =>
        isTesseraError(err, 'TSR_NOT_FOUND'),
      )
    })
  })

  describe(`${backend.name}: ensureAdminToken`, () => {
    it('creates one admin token when none is active, even when called concurrently', async () => {
      const store = await backend.open()
      const clock = createFixedClock('2026-04-01T00:00:00.000Z')
      try {
        const results = await Promise.all([
          ensureAdminToken(store, clock),
          ensureAdminToken(store, clock),
          ensureAdminToken(store, clock),
        ])
        const created = results.filter((r) => r !== undefined)
        assert.equal(created.length, 1)
        assert.equal(created[0]!.name, 'admin')
        assert.deepEqual(created[0]!.scopes, ['admin'])
        assert.equal((await verifyApiToken(store, created[0]!.token, clock)).ok, true)
        assert.equal(await ensureAdminToken(store, clock), undefined)

        // Once the only admin token is revoked, the next start makes a new one.
        await revokeApiToken(store, created[0]!.id, clock)
        const replacement = await ensureAdminToken(store, clock)
        assert.ok(replacement)
        assert.notEqual(replacement.id, created[0]!.id)
      } finally {
        await store.close()
      }
    })
  })
}
