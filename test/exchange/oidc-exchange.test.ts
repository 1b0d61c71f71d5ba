import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import {
  createOidcExchangeVerifier,
  spiffePathFromClaims,
} from '../../src/exchange/oidc-verifier.js'
import {
  createTokenExchange,
  grantTypeTokenExchange as grant,
  tokenTypeIdToken,
} from '../../src/exchange/token-exchange.js'
import { isTesseraError } from '../../src/errors.js'
import { createInventory } from '../../src/inventory/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { openStore, type Store } from '../../src/store/index.js'
import { createJwtOnlyCa } from '../support/jwt-only-ca.js'

describe('token exchange: a CI OIDC token for a JWT-SVID', () => {
  const clock = createFixedClock(new Date(Math.floor(Date.now() / 1000) * 1000))
  let issuerServer: Server
  let issuer = ''
  let key: CryptoKey
  let store: Store
  let app: FastifyInstance

  const ciToken = (claims: Record<string, unknown>, signWith?: CryptoKey) =>
    new SignJWT({
      repository: 'acme/payments-api',
      repository_owner: 'acme',
      ref: 'refs/heads/main',
      workflow: 'deploy',
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'gh-1' })
      .setIssuer(issuer)
      .setAudience('https://tessera.acme.example')
      .setSubject('repo:acme/payments-api:ref:refs/heads/main')
      .setIssuedAt(Math.floor(clock.now().getTime() / 1000))
      .setExpirationTime(Math.floor(clock.now().getTime() / 1000) + 300)
      .sign(signWith ?? key)

  const exchange = (token: string, extra: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/v1/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: grant,
        subject_token: token,
        subject_token_type: tokenTypeIdToken,
        audience: 'https://registry.acme.example',
        ...extra,
      }).toString(),
    })

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true })
    key = pair.privateKey
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'gh-1', alg: 'ES256', use: 'sig' }
    // A real OIDC issuer over HTTP: discovery document and JWKS.
    issuerServer = createServer((req, res) => {
      res.setHeader('content-type', 'application/json')
      if (req.url === '/.well-known/openid-configuration') {
        res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }))
      } else if (req.url === '/keys') {
        res.end(JSON.stringify({ keys: [jwk] }))
      } else {
        res.statusCode = 404
        res.end('{}')
      }
    })
    await new Promise<void>((r) => issuerServer.listen(0, '127.0.0.1', r))
    issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`
    store = await openStore({ backend: 'pglite' })
    const { ca } = await createJwtOnlyCa('acme.example', clock)
    const oidc = createOidcExchangeVerifier({
      trustDomain: 'acme.example',
      clock,
      issuers: [
        {
          name: 'github',
          issuer,
          audience: ['https://tessera.acme.example'],
          profile: 'github',
          requiredClaims: { repository_owner: 'acme' },
          spiffeIdPath: '/ci/github/{repository}/{ref}',
          scopes: ['registry:push', 'registry:pull'],
        },
      ],
    })
    app = await buildApp({
      store,
      inventory: createInventory({ store, clock }),
      clock,
      tokenExchange: createTokenExchange({ ca, verifiers: [oidc], clock }),
    })
  })
  after(async () => {
    await app.close()
    await store.close()
    issuerServer.close()
  })

  it('maps the verified claims to a SPIFFE ID, bounds the scope, binds the audience', async () => {
    const res = await exchange(await ciToken({}), { scope: 'registry:push admin' })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().scope, 'registry:push')
    const claims = decodeJwt(res.json().access_token)
    assert.equal(claims.sub, 'spiffe://acme.example/ci/github/acme/payments-api/refs/heads/main')
    assert.deepEqual(claims.aud, ['https://registry.acme.example'])
    // Without a scope the issuer's ceiling is given.
    const all = await exchange(await ciToken({}))
    assert.equal(all.json().scope, 'registry:push registry:pull')
  })

  it('refuses another owner, a forged signature, an expired token, and claims that are not path-safe', async () => {
    const other = await exchange(await ciToken({ repository_owner: 'evil', repository: 'evil/x' }))
    assert.equal(other.json().error, 'invalid_grant')
    assert.match(other.json().error_description, /repository_owner/)

    const stranger = await generateKeyPair('ES256')
    const forged = await exchange(await ciToken({}, stranger.privateKey))
    assert.equal(forged.json().error, 'invalid_grant')

    const token = await ciToken({})
    clock.advance(400_000)
    assert.equal((await exchange(token)).json().error, 'invalid_grant')
    clock.advance(-400_000)

    const weird = await exchange(await ciToken({ ref: 'refs/heads/../../admin' }))
    assert.equal(weird.json().error, 'invalid_grant')
    assert.match(weird.json().error_description, /valid SPIFFE ID path/)
  })

  it('path templates: one value per claim, no empty or dot segments', () => {
    assert.equal(spiffePathFromClaims('/ci/{a}/{b/c}', { a: 'x', b: { c: 'y.z' } }), '/ci/x/y.z')
    for (const claims of [{ a: ['x', 'y'] }, { a: '' }, { a: 'x y' }, { a: '..' }, {}]) {
      assert.throws(
        () => spiffePathFromClaims('/ci/{a}', claims),
        (e) => isTesseraError(e, 'TSR_EXCHANGE_INVALID_TOKEN'),
        JSON.stringify(claims),
      )
    }
  })
})
