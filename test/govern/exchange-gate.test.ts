import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { discardEvents } from '../../src/audit/event-sink.js'
import { createJwtSvidVerifier } from '../../src/exchange/jwt-svid-verifier.js'
import {
  createTokenExchange,
  grantTypeTokenExchange as grant,
  tokenTypeJwt as jwtType,
} from '../../src/exchange/token-exchange.js'
import { createInventory } from '../../src/inventory/index.js'
import { createGovernance } from '../../src/policy/governance/governance.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { buildApp } from '../../src/server/app.js'
import { openStore, type Store } from '../../src/store/index.js'
import { createJwtOnlyCa } from '../support/jwt-only-ca.js'

const td = 'example.org'
const audience = `spiffe://${td}/tessera/token-exchange`

describe('token exchange under the governance policy', () => {
  const clock = createFixedClock(new Date(Math.floor(Date.now() / 1000) * 1000))
  let store: Store
  let app: FastifyInstance
  let fake: Awaited<ReturnType<typeof createJwtOnlyCa>>
  const svid = async (spiffeId: string, claims: Record<string, unknown> = {}) =>
    (await fake.ca.mintJwtSvid({ spiffeId, audience: [audience], claims })).token
  const post = (form: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/v1/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(form).toString(),
    })

  before(async () => {
    store = await openStore({ backend: 'pglite' })
    fake = await createJwtOnlyCa(td, clock)
    const governance = createGovernance({ store, events: discardEvents, clock })
    await governance.apply(
      `version: 1
maxTtl:
  workload: 5m
  ai_agent: 1m
naming:
  ai_agent:
    pattern: '^spiffe://example\\.org/agent/[a-z0-9/-]+$'
`,
    )
    const exchange = createTokenExchange({
      ca: fake.ca,
      verifiers: [createJwtSvidVerifier({ ca: fake.ca, audience })],
      policy: { maxTtlSeconds: 3600 },
      clock,
      governance,
    })
    app = await buildApp({
      store,
      inventory: createInventory({ store, clock }),
      clock,
      tokenExchange: exchange,
      governance,
    })
  })
  after(async () => {
    await app.close()
    await store.close()
  })

  it('grants a lifetime within the policy', async () => {
    const res = await post({
      grant_type: grant,
      subject_token: await svid(`spiffe://${td}/ns/pay/sa/api`),
      subject_token_type: jwtType,
      audience: 'https://payments.internal',
      requested_ttl: '300',
    })
    assert.equal(res.statusCode, 200, res.body)
  })

  it('refuses a lifetime above maxTtl with the rule and a fix', async () => {
    const res = await post({
      grant_type: grant,
      subject_token: await svid(`spiffe://${td}/ns/pay/sa/api`),
      subject_token_type: jwtType,
      audience: 'https://payments.internal',
      requested_ttl: '900',
    })
    // The token endpoint answers in RFC 6749 §5.2 form: a 400 whose description names the rule.
    assert.equal(res.statusCode, 400, res.body)
    assert.match(res.json<{ error_description: string }>().error_description, /^policy\.max-ttl: /)
    assert.match(res.body, /ask for 300 s or less/)
  })

  it('refuses a delegation to an agent whose SPIFFE ID breaks the ai_agent naming rule', async () => {
    const form = (actor: string) => ({
      grant_type: grant,
      subject_token: '',
      subject_token_type: jwtType,
      actor_token: actor,
      actor_token_type: jwtType,
      audience: 'https://tools.internal',
      scope: 'docs:read',
      requested_ttl: '60',
    })
    const subject = await svid(`spiffe://${td}/ns/pay/sa/api`, { scope: 'docs:read' })
    const good = await post({
      ...form(await svid(`spiffe://${td}/agent/helper`)),
      subject_token: subject,
    })
    assert.equal(good.statusCode, 200, good.body)
    const bad = await post({
      ...form(await svid(`spiffe://${td}/bots/Helper`)),
      subject_token: subject,
    })
    assert.equal(bad.statusCode, 400, bad.body)
    assert.match(bad.body, /policy\.naming/)
  })
})
