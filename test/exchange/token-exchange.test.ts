import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { decodeJwt, jwtVerify, SignJWT, generateKeyPair } from 'jose'
import { createJwtSvidVerifier } from '../../src/exchange/jwt-svid-verifier.js'
import {
  createTokenExchange,
  grantTypeTokenExchange as grant,
  tokenTypeJwt as jwtType,
} from '../../src/exchange/token-exchange.js'
import { createInventory } from '../../src/inventory/index.js'
import { createDenyListMatcher, createRevocationList } from '../../src/lifecycle/revocations.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { openStore, type Store } from '../../src/store/index.js'
import { createJwtOnlyCa } from '../support/jwt-only-ca.js'

const td = 'example.org'
const endpointAudience = `spiffe://${td}/tessera/token-exchange`

describe('POST /v1/token (RFC 8693)', () => {
  // Whole seconds, as JWT times are.
  const clock = createFixedClock(new Date(Math.floor(Date.now() / 1000) * 1000))
  let store: Store
  let app: FastifyInstance
  let fake: Awaited<ReturnType<typeof createJwtOnlyCa>>

  const svid = async (
    spiffeId: string,
    claims: Record<string, unknown> = {},
    audience = endpointAudience,
  ) => (await fake.ca.mintJwtSvid({ spiffeId, audience: [audience], claims })).token

  const post = (form: Record<string, string>, contentType = 'application/x-www-form-urlencoded') =>
    app.inject({
      method: 'POST',
      url: '/v1/token',
      headers: { 'content-type': contentType },
      payload: new URLSearchParams(form).toString(),
    })

  before(async () => {
    store = await openStore({ backend: 'pglite' })
    fake = await createJwtOnlyCa(td, clock)
    const revocations = createRevocationList({ store, clock })
    const exchange = createTokenExchange({
      ca: fake.ca,
      verifiers: [createJwtSvidVerifier({ ca: fake.ca, audience: endpointAudience })],
      isRevoked: async (q) => (await revocations.find(q)) !== undefined,
      policy: { maxTtlSeconds: 600, maxChainDepth: 3 },
      clock,
    })
    app = await buildApp({
      store,
      inventory: createInventory({ store, clock }),
      clock,
      tokenExchange: exchange,
    })
  })
  after(async () => {
    await app.close()
    await store.close()
  })

  it('exchanges a JWT-SVID for a short-lived one bound to the requested audience', async () => {
    const res = await post({
      grant_type: grant,
      subject_token: await svid(`spiffe://${td}/ci/github/acme/api`),
      subject_token_type: jwtType,
      audience: 'https://payments.internal',
      requested_ttl: '3600',
    })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.headers['cache-control'], 'no-store')
    const body = res.json()
    assert.equal(body.issued_token_type, jwtType)
    assert.equal(body.token_type, 'Bearer')
    assert.equal(body.expires_in, 600) // capped by policy
    const { payload, protectedHeader } = await jwtVerify(body.access_token, fake.publicKey, {
      audience: 'https://payments.internal',
      currentDate: clock.now(),
    })
    assert.equal(protectedHeader.alg, 'ES256')
    assert.equal(payload.sub, `spiffe://${td}/ci/github/acme/api`)
    assert.equal(payload.act, undefined)
  })

  it('delegates to an AI agent: act chain, narrowed scope, intent; and a second hop nests the chain', async () => {
    const human = await svid(`spiffe://${td}/human/alice`, {
      scope: 'tickets:read tickets:write repo:read',
    })
    const agentA = `spiffe://${td}/agent/planner`
    const agentB = `spiffe://${td}/agent/coder`
    const hop1 = await post({
      grant_type: grant,
      subject_token: human,
      subject_token_type: jwtType,
      actor_token: await svid(agentA),
      actor_token_type: jwtType,
      audience: endpointAudience, // to hand on to a sub-agent
      scope: 'tickets:read repo:read admin:all',
      intent: 'triage open tickets',
    })
    assert.equal(hop1.statusCode, 200, hop1.body)
    assert.equal(hop1.json().scope, 'tickets:read repo:read') // admin:all dropped: never widens
    const t1 = decodeJwt(hop1.json().access_token)
    assert.equal(t1.sub, `spiffe://${td}/human/alice`)
    assert.deepEqual(t1.act, { sub: agentA })
    assert.equal(t1.intent, 'triage open tickets')

    const hop2 = await post({
      grant_type: grant,
      subject_token: hop1.json().access_token,
      subject_token_type: jwtType,
      actor_token: await svid(agentB),
      actor_token_type: jwtType,
      audience: 'https://git.internal',
      scope: 'repo:read tickets:write',
    })
    assert.equal(hop2.statusCode, 200, hop2.body)
    assert.equal(hop2.json().scope, 'repo:read') // tickets:write was not held by hop 1
    const t2 = decodeJwt(hop2.json().access_token)
    assert.equal(t2.sub, `spiffe://${td}/human/alice`)
    assert.deepEqual(t2.act, { sub: agentB, act: { sub: agentA } })

    // An agent already in the chain cannot act again (no loops) ...
    const loop = await post({
      grant_type: grant,
      subject_token: hop1.json().access_token,
      subject_token_type: jwtType,
      actor_token: await svid(agentA),
      actor_token_type: jwtType,
      audience: 'https://git.internal',
    })
    assert.equal(loop.statusCode, 400)
    assert.equal(loop.json().error, 'unauthorized_client')

    // ... a scope the subject never held is refused outright ...
    const wider = await post({
      grant_type: grant,
      subject_token: hop1.json().access_token,
      subject_token_type: jwtType,
      actor_token: await svid(agentB),
      actor_token_type: jwtType,
      audience: 'https://git.internal',
      scope: 'admin:all',
    })
    assert.equal(wider.json().error, 'invalid_scope')
  })

  it('limits the depth of the chain', async () => {
    let subject = await svid(`spiffe://${td}/human/bob`, { scope: 'a' })
    for (let i = 1; i <= 4; i++) {
      const res = await post({
        grant_type: grant,
        subject_token: subject,
        subject_token_type: jwtType,
        actor_token: await svid(`spiffe://${td}/agent/a${i}`),
        actor_token_type: jwtType,
        audience: endpointAudience,
      })
      if (i <= 3) {
        assert.equal(res.statusCode, 200, res.body)
        subject = res.json().access_token
      } else {
        assert.equal(res.statusCode, 400)
        assert.equal(res.json().error, 'unauthorized_client')
        assert.match(res.json().error_description, /at most 3/)
      }
    }
  })

  it('refuses bad tokens as invalid_grant: another audience, expired, HS256, alg none, unknown issuer, revoked', async () => {
    const ask = (token: string) =>
      post({ grant_type: grant, subject_token: token, subject_token_type: jwtType, audience: 'x' })
    const otherAud = await svid(`spiffe://${td}/w`, {}, 'https://someone-else')
    assert.equal((await ask(otherAud)).json().error, 'invalid_grant')

    const old = await svid(`spiffe://${td}/w`)
    clock.advance(301_000)
    assert.equal((await ask(old)).json().error, 'invalid_grant')
    clock.advance(-301_000)

    const hs = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'test-kid-1' })
      .setSubject(`spiffe://${td}/w`)
      .setAudience(endpointAudience)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('a-shared-secret-of-32-bytes-long!'))
    assert.equal((await ask(hs)).json().error, 'invalid_grant')

    const none =
      Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url') +
      '.' +
      Buffer.from(
        JSON.stringify({ sub: `spiffe://${td}/w`, aud: endpointAudience, exp: 9e9 }),
      ).toString('base64url') +
      '.'
    assert.equal((await ask(none)).json().error, 'invalid_grant')

    const stranger = await generateKeyPair('ES256')
    const foreign = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'test-kid-1' })
      .setSubject(`spiffe://${td}/w`)
      .setAudience(endpointAudience)
      .setExpirationTime('5m')
      .sign(stranger.privateKey)
    assert.equal((await ask(foreign)).json().error, 'invalid_grant')
    const otherDomain = await svid('spiffe://other.org/w')
    assert.match((await ask(otherDomain)).json().error_description, /no issuer this server trusts/)

    const revokedId = `spiffe://${td}/compromised`
    const token = await svid(revokedId)
    assert.equal((await ask(token)).statusCode, 200)
    await createRevocationList({ store, clock }).add({ targetType: 'spiffe_id', value: revokedId })
    const after = await ask(token)
    assert.equal(after.json().error, 'invalid_grant')
    assert.match(after.json().error_description, /revoked/)
  })

  it('bad requests are invalid_request / unsupported_grant_type in the OAuth format', async () => {
    const subject = await svid(`spiffe://${td}/w`)
    const cases: [Record<string, string>, string][] = [
      [{ grant_type: 'client_credentials' }, 'unsupported_grant_type'],
      [{ grant_type: grant, subject_token_type: jwtType, audience: 'x' }, 'invalid_request'],
      [
        { grant_type: grant, subject_token: subject, subject_token_type: 'urn:x', audience: 'x' },
        'invalid_request',
      ],
      [
        { grant_type: grant, subject_token: subject, subject_token_type: jwtType },
        'invalid_request',
      ],
      [
        {
          grant_type: grant,
          subject_token: subject,
          subject_token_type: jwtType,
          audience: 'x',
          actor_token: subject,
        },
        'invalid_request',
      ],
      [
        {
          grant_type: grant,
          subject_token: subject,
          subject_token_type: jwtType,
          audience: 'x',
          unknown: '1',
        },
        'invalid_request',
      ],
      [
        {
          grant_type: grant,
          subject_token: subject,
          subject_token_type: jwtType,
          audience: 'x',
          scope: 'a "b',
        },
        'invalid_scope',
      ],
    ]
    for (const [form, error] of cases) {
      const res = await post(form)
      assert.equal(res.statusCode, 400, JSON.stringify(form))
      assert.equal(res.json().error, error, JSON.stringify(form))
      assert.equal(typeof res.json().error_description, 'string')
    }
    const dup = await app.inject({
      method: 'POST',
      url: '/v1/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `grant_type=${encodeURIComponent(grant)}&audience=a&audience=b`,
    })
    assert.equal(dup.json().error, 'invalid_request')
    assert.match(dup.json().error_description, /more than once/)
    const json = await app.inject({
      method: 'POST',
      url: '/v1/token',
      payload: { grant_type: grant },
    })
    assert.equal(json.statusCode, 400)
    assert.equal(json.json().error, 'invalid_request')
  })

  it('the deny-list matcher and the exchange agree on what is revoked', () => {
    // Guards the contract the exchange relies on: a jti on the list denies the token.
    const m = createDenyListMatcher([
      {
        id: 1,
        targetType: 'jti',
        value: 'j',
        reason: null,
        createdAt: '',
        expiresAt: null,
        createdBy: null,
      },
    ])
    assert.ok(m.denies({ spiffeId: 'spiffe://x/y', jti: 'j' }, clock.now()))
  })
})
