import assert from 'node:assert/strict'
import {
  X509Certificate,
  createHash,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
} from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { SignJWT, createLocalJWKSet, jwtVerify } from 'jose'
import { sql } from 'kysely'
import { createFixedClock } from '../runtime/clock.js'
import { jwtJwks } from '../spiffe/bundle.js'
import { readCertificateExtensions } from '../spiffe/x509-ext.js'
import { validateX509Svid } from '../spiffe/x509-svid.js'
import type { Store } from '../store/store.js'
import { testBackends } from '../../test/support/stores.js'
import { createCertificateAuthority, type CaDeps } from './ca.js'
import { createDiskKeyManager } from './key-manager.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-ca-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const hour = 3600_000
const start = '2026-01-01T00:00:00.000Z'

function workloadKey() {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' })
}

for (const backend of testBackends()) {
  describe(`CA (${backend.name})`, () => {
    let store: Store
    const kek = randomBytes(32)
    before(async () => {
      store = await backend.open()
    })
    after(async () => {
      await store?.close()
    })

    const make = (clock: ReturnType<typeof createFixedClock>, extra: Partial<CaDeps> = {}) =>
      createCertificateAuthority({
        store,
        keyManager: createDiskKeyManager(kek),
        clock,
        trustDomain: 'example.org',
        ...extra,
      })

    it('bootstraps a self-signed root and a JWT key, signs SVIDs that validate, and records each issuance', async () => {
      const clock = createFixedClock(start)
      const ca = await make(clock)
      const bundle = await ca.bundle()
      assert.equal(bundle.x509Authorities.length, 1)
      assert.equal(bundle.jwtAuthorities.length, 1)
      const root = readCertificateExtensions(bundle.x509Authorities[0]!)
      assert.deepEqual(root.uris, ['spiffe://example.org'])
      assert.equal(root.basicConstraints?.ca, true)
      const agentId = randomUUID()
      const entryId = randomUUID()
      const keys = Array.from({ length: 50 }, workloadKey)
      const svids = await ca.signX509Svids(
        keys.map((k, i) => ({ spiffeId: `spiffe://example.org/w/${i}`, publicKey: k.publicKey })),
        { agentId, entryId },
      )
      assert.equal(new Set(svids.map((s) => s.serial)).size, 50)
      const now = clock.now()
      for (const s of svids) {
        assert.equal(s.certChain.length, 1)
        assert.equal(validateX509Svid(s.certChain, bundle, now).spiffeId, s.spiffeId)
        assert.equal(s.notBefore.getTime(), now.getTime() - 10_000)
        assert.equal(s.notAfter.getTime(), now.getTime() + hour)
        assert.equal(new X509Certificate(s.certChain[0]!).serialNumber.toLowerCase(), s.serial)
      }
      const rows = await store.db
        .selectFrom('issuance')
        .selectAll()
        .where('svid_type', '=', 'x509')
        .execute()
      assert.equal(rows.length, 50)
      const row = rows.find((r) => r.serial === svids[3]!.serial)!
      assert.equal(row.spiffe_id, 'spiffe://example.org/w/3')
      assert.equal(row.agent_id, agentId)
      assert.equal(row.entry_id, entryId)
      assert.equal(
        row.public_key_hash,
        createHash('sha256')
          .update(keys[3]!.publicKey.export({ type: 'spki', format: 'der' }))
          .digest('hex'),
      )
      assert.equal(new Date(row.not_after).getTime(), svids[3]!.notAfter.getTime())
    })

    it('keeps no private key bytes in the clear in the store', async () => {
      const km = createDiskKeyManager(kek)
      await make(createFixedClock(start))
      const rows = await store.db.selectFrom('ca_key').selectAll().execute()
      assert.ok(rows.length >= 2)
      // Everything the table holds, as the database would dump it (bytea as hex).
      const dump = (
        await sql<{
          dump: string
        }>`select string_agg(row_to_json(k)::text, '') as dump from ca_key k`.execute(store.db)
      ).rows[0]!.dump.toLowerCase()
      for (const row of rows) {
        const key = km.unseal(row.id, {
          encryptedPrivateKey: Buffer.from(row.encrypted_private_key),
          wrappedDataKey: Buffer.from(row.wrapped_data_key),
          kekId: row.kek_id,
        })
        const d = Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url')
        const pkcs8 = key.export({ type: 'pkcs8', format: 'der' })
        for (const secret of [d, pkcs8, kek]) {
          assert.ok(!dump.includes(secret.toString('hex')), 'hex')
          assert.ok(!dump.includes(secret.toString('base64')), 'base64')
        }
        assert.ok(!dump.includes('private key'))
      }
    })

    it('caps the TTL at the CA expiry and refuses bad requests', async () => {
      const clock = createFixedClock(start)
      const ca = await make(clock)
      const caCert = new X509Certificate((await ca.bundle()).x509Authorities[0]!)
      const [long] = await ca.signX509Svids([
        {
          spiffeId: 'spiffe://example.org/long',
          publicKey: workloadKey().publicKey,
          ttlSeconds: 30 * 86_400,
        },
      ])
      assert.equal(long!.notAfter.getTime(), new Date(caCert.validTo).getTime())
      // SPKI DER requests (as on the wire) and DNS SANs.
      const der = workloadKey().publicKey.export({ type: 'spki', format: 'der' })
      const [withDns] = await ca.signX509Svids([
        {
          spiffeId: 'spiffe://example.org/dns',
          publicKey: der,
          dnsNames: ['web.example.org', '*.web.example.org'],
        },
      ])
      const ext = readCertificateExtensions(withDns!.certChain[0]!)
      assert.deepEqual(ext.uris, ['spiffe://example.org/dns'])
      assert.deepEqual(ext.dnsNames, ['web.example.org', '*.web.example.org'])
      assert.ok(
        new X509Certificate(withDns!.certChain[0]!).publicKey
          .export({ type: 'spki', format: 'der' })
          .equals(der),
      )
      assert.equal(
        validateX509Svid(withDns!.certChain, await ca.bundle(), clock.now()).spiffeId,
        'spiffe://example.org/dns',
      )
      await assert.rejects(
        ca.signX509Svids([
          {
            spiffeId: 'spiffe://example.org/x',
            publicKey: workloadKey().publicKey,
            dnsNames: ['bad name'],
          },
        ]),
        { code: 'TSR_VALIDATION' },
      )
      const pk = workloadKey().publicKey
      await assert.rejects(
        ca.signX509Svids([{ spiffeId: 'spiffe://other.org/x', publicKey: pk }]),
        { code: 'TSR_VALIDATION' },
      )
      await assert.rejects(
        ca.signX509Svids([{ spiffeId: 'spiffe://example.org', publicKey: pk }]),
        { code: 'TSR_SPIFFE_ID_INVALID' },
      )
      await assert.rejects(
        ca.signX509Svids([{ spiffeId: 'spiffe://example.org/x', publicKey: pk }], {
          agentId: 'a1',
        }),
        {
          code: 'TSR_VALIDATION',
        },
      )
      await assert.rejects(
        ca.signX509Svids([
          { spiffeId: 'spiffe://example.org/x', publicKey: workloadKey().privateKey },
        ]),
        { code: 'TSR_VALIDATION' },
      )
      await assert.rejects(
        ca.signX509Svids([{ spiffeId: 'spiffe://example.org/x', publicKey: pk, ttlSeconds: 0 }]),
        {
          code: 'TSR_VALIDATION',
        },
      )
    })

    it('mints JWT-SVIDs that jose verifies and that validate only for their audience, unexpired, ES256, known kid', async () => {
      const clock = createFixedClock(new Date())
      const ca = await make(clock)
      const jwt = await ca.mintJwtSvid({
        spiffeId: 'spiffe://example.org/web',
        audience: ['api'],
        claims: { sub: 'x', scope: 'read' },
      })
      const jwks = createLocalJWKSet(
        jwtJwks(await ca.bundle()) as Parameters<typeof createLocalJWKSet>[0],
      )
      const { payload, protectedHeader } = await jwtVerify(jwt.token, jwks, {
        audience: 'api',
        algorithms: ['ES256'],
        currentDate: clock.now(),
      })
      assert.equal(payload.sub, 'spiffe://example.org/web')
      assert.equal(payload.jti, jwt.jti)
      assert.equal(payload.scope, 'read')
      assert.equal(payload.exp! - payload.iat!, 300)
      assert.deepEqual(protectedHeader, { alg: 'ES256', kid: jwt.kid, typ: 'JWT' })
      const ok = await ca.validateJwtSvid(jwt.token, 'api')
      assert.equal(ok.spiffeId, 'spiffe://example.org/web')
      await assert.rejects(ca.validateJwtSvid(jwt.token, 'other'), { code: 'TSR_JWT_SVID_INVALID' })
      const hs = await new SignJWT({
        sub: 'spiffe://example.org/web',
        aud: 'api',
        exp: payload.exp,
      })
        .setProtectedHeader({ alg: 'HS256', kid: jwt.kid })
        .sign(randomBytes(32))
      await assert.rejects(ca.validateJwtSvid(hs, 'api'), { code: 'TSR_JWT_SVID_INVALID' })
      const [h, p] = jwt.token.split('.')
      const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`
      await assert.rejects(ca.validateJwtSvid(none, 'api'), { code: 'TSR_JWT_SVID_INVALID' })
      const unknownKid = `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'jwt-nope', typ: 'JWT' })).toString('base64url')}.${p}.${jwt.token.split('.')[2]}`
      await assert.rejects(ca.validateJwtSvid(unknownKid, 'api'), { code: 'TSR_JWT_SVID_INVALID' })
      void h
      clock.advance(301_000)
      await assert.rejects(ca.validateJwtSvid(jwt.token, 'api'), { code: 'TSR_JWT_SVID_INVALID' })
      const rows = await store.db
        .selectFrom('issuance')
        .selectAll()
        .where('jti', '=', jwt.jti)
        .execute()
      assert.equal(rows.length, 1)
      assert.equal(rows[0]!.svid_type, 'jwt')
    })
  })
}
