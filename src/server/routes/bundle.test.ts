import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { parseBundle } from '../../spiffe/bundle.js'
import { validateX509Svid } from '../../spiffe/x509-svid.js'
import { generateKeyPairSync } from 'node:crypto'
import { freshSchemaName } from '../../../test/support/stores.js'
import { startServer } from '../compose.js'

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

const dir = mkdtempSync(join(tmpdir(), 'tessera-bundle-'))
after(() => rmSync(dir, { recursive: true, force: true }))

describe('server CA and bundle endpoints', () => {
  it('serves the SPIFFE bundle and a JWKS jose verifies against, publicly; keeps the CA across restarts', async () => {
    const dataDir = join(dir, 'data')
    const log = logCapture()
    const server = await startServer({
      dataDir,
      port: 0,
      log: log.stream,
      ca: { env: {}, trustDomain: 'example.org' },
    })
    let sequence: number
    try {
      assert.equal(server.trustDomain, 'example.org')
      assert.equal(statSync(join(dataDir, 'kek')).mode & 0o777, 0o600)
      assert.match(log.text(), /generated a key-encryption key/)
      const res = await fetch(`${server.url}/v1/bundle`)
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
      const bundle = parseBundle(await res.text(), 'example.org')
      const own = await server.ca.bundle()
      sequence = own.sequence
      assert.equal(bundle.sequence, own.sequence)
      assert.equal(bundle.refreshHintSeconds, 300)
      assert.ok(bundle.x509Authorities[0]!.equals(own.x509Authorities[0]!))
      assert.deepEqual(
        bundle.jwtAuthorities.map((a) => a.kid),
        own.jwtAuthorities.map((a) => a.kid),
      )
      // A minted SVID validates against the served bundle.
      const [svid] = await server.ca.signX509Svids([
        {
          spiffeId: 'spiffe://example.org/web',
          publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
        },
      ])
      assert.equal(
        validateX509Svid(svid!.certChain, bundle, new Date()).spiffeId,
        'spiffe://example.org/web',
      )
      // jose fetches the JWKS over HTTP and verifies a JWT-SVID.
      const jwt = await server.ca.mintJwtSvid({
        spiffeId: 'spiffe://example.org/web',
        audience: ['billing'],
      })
      const jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`))
      const { payload } = await jwtVerify(jwt.token, jwks, {
        audience: 'billing',
        algorithms: ['ES256'],
      })
      assert.equal(payload.sub, 'spiffe://example.org/web')
      await assert.rejects(jwtVerify(jwt.token, jwks, { audience: 'other' }))
    } finally {
      await server.close()
    }
    const again = await startServer({ dataDir, port: 0, log: logCapture().stream, ca: { env: {} } })
    try {
      assert.equal(again.trustDomain, 'example.org', 'the trust domain comes from the store')
      assert.equal((await again.ca.bundle()).sequence, sequence)
    } finally {
      await again.close()
    }
    await assert.rejects(
      startServer({
        dataDir,
        port: 0,
        log: logCapture().stream,
        ca: { env: {}, trustDomain: 'other.org' },
      }),
      { code: 'TSR_CONFIG' },
    )
  })

  const url = process.env.TESSERA_TEST_DATABASE_URL
  if (url) {
    it('refuses PostgreSQL without a KEK and starts with one', async () => {
      const schema = freshSchemaName()
      await assert.rejects(
        startServer({
          databaseUrl: url,
          databaseSchema: schema,
          port: 0,
          log: logCapture().stream,
          ca: { env: {} },
        }),
        (err: Error & { code?: string }) =>
          err.code === 'TSR_CONFIG' && /TESSERA_KEK/.test(err.message),
      )
      const kek = randomBytes(32).toString('base64')
      const server = await startServer({
        databaseUrl: url,
        databaseSchema: schema,
        port: 0,
        log: logCapture().stream,
        ca: { env: { TESSERA_KEK: kek } },
      })
      try {
        assert.match(server.trustDomain, /^tessera-[0-9a-f]{8}\.local$/)
        const res = await fetch(`${server.url}/v1/bundle`)
        assert.equal(res.status, 200)
      } finally {
        await server.close()
      }
    })
  }
})
