import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { createJwtSvidVerifier } from '../../src/exchange/jwt-svid-verifier.js'
import {
  createTokenExchange,
  grantTypeTokenExchange,
  tokenTypeJwt,
} from '../../src/exchange/token-exchange.js'
import { createRevocationList } from '../../src/lifecycle/revocations.js'
import {
  createAuthzService,
  defaultAuthzAudience,
  pemCertificates,
  resolvePrincipal,
  trustBundles,
  type AuthzService,
} from '../../src/policy/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { openStore, type Store } from '../../src/store/index.js'
import { createFakeCa, type FakeCa } from '../support/fake-ca.js'
import { agent, basePolicies, reporter, seed, td, web } from './fixtures.js'

const pem = (der: Buffer) =>
  `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`

describe('principals: JWT-SVID, X.509-SVID and exchanged tokens', () => {
  let store: Store
  let ca: FakeCa
  let authz: AuthzService
  const clock = createFixedClock(new Date())
  const audience = defaultAuthzAudience(td)
  const exchangeAudience = `spiffe://${td}/tessera/token-exchange`
  const events = createMemoryEventSink()

  before(async () => {
    store = await openStore({ backend: 'pglite' })
    await seed(store, clock)
    ca = await createFakeCa(td, clock)
    authz = createAuthzService({
      store,
      clock,
      events,
      bundles: trustBundles({ ca }),
      jwtAudience: audience,
      extraActions: ['whoami'],
    })
    for (const [name, body] of Object.entries(basePolicies)) {
      await authz.policies.add({ name, body, activate: true })
    }
    await authz.policies.add({
      name: 'presented',
      body: `permit (principal, action == Tessera::Action::"whoami", resource)
when { context.presentedAs == "x509_svid" || context.scopes.contains("reports:read") };`,
      activate: true,
    })
  })
  after(() => store.close())

  it('verifies a JWT-SVID for the audience and refuses a forged or foreign one', async () => {
    const svid = await ca.mintJwtSvid({ spiffeId: web, audience: [audience] })
    const ok = await authz.authorizer.authorize({
      principal: { type: 'jwt_svid', token: svid.token },
      action: 'db:query',
      resource: 'db:payments',
    })
    assert.equal(ok.decision, 'allow')
    assert.equal(ok.principal, web)
    const other = await ca.mintJwtSvid({ spiffeId: web, audience: ['spiffe://example.org/other'] })
    const wrongAudience = await authz.authorizer.authorize({
      principal: { type: 'jwt_svid', token: other.token },
      action: 'db:query',
      resource: 'db:payments',
    })
    assert.equal(wrongAudience.decision, 'deny')
    assert.equal(wrongAudience.reason?.code, 'principal_invalid')
    const [h, p, s] = svid.token.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: reporter })).toString('base64url')}.${s}`
    const d = await authz.authorizer.authorize({
      principal: { type: 'jwt_svid', token: forged },
      action: 'read',
      resource: 's3:reports',
    })
    assert.equal(d.decision, 'deny')
    assert.equal(d.reason?.code, 'principal_invalid')
    assert.match(d.reason!.message, /signature/)
  })

  it('verifies an X.509-SVID chain against the bundle and denies its revoked serial', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const [leaf] = await ca.signX509Svids([{ spiffeId: web, publicKey }])
    const chain = leaf!.certChain.map(pem).join('')
    const ok = await authz.authorizer.authorize({
      principal: { type: 'x509_svid', chain },
      action: 'whoami',
      resource: 'x',
    })
    assert.equal(ok.decision, 'allow')
    assert.equal(ok.principal, web)
    await createRevocationList({ store, clock }).add({ targetType: 'serial', value: leaf!.serial })
    await authz.authorizer.refresh()
    const d = await authz.authorizer.authorize({
      principal: { type: 'x509_svid', chain },
      action: 'whoami',
      resource: 'x',
    })
    assert.equal(d.decision, 'deny')
    assert.equal(d.reason?.code, 'revoked')
    assert.equal(d.reason?.revocation?.targetType, 'serial')
    // A self-made chain is not trusted.
    const bad = await authz.authorizer.authorize({
      principal: {
        type: 'x509_svid',
        chain: pem(Buffer.from((await ca.bundle()).x509Authorities[0]!)),
      },
      action: 'whoami',
      resource: 'x',
    })
    assert.equal(bad.decision, 'deny')
    assert.equal(bad.reason?.code, 'principal_invalid')
  })

  it('takes the delegation chain, scope and intent from an exchanged token', async () => {
    const exchange = createTokenExchange({
      ca,
      verifiers: [createJwtSvidVerifier({ ca, audience: exchangeAudience })],
      clock,
    })
    const subject = await ca.mintJwtSvid({
      spiffeId: reporter,
      audience: [exchangeAudience],
      claims: { scope: 'reports:read reports:write' },
    })
    const actor = await ca.mintJwtSvid({ spiffeId: agent, audience: [exchangeAudience] })
    const exchanged = await exchange.exchange({
      grant_type: grantTypeTokenExchange,
      subject_token: subject.token,
      subject_token_type: tokenTypeJwt,
      actor_token: actor.token,
      actor_token_type: tokenTypeJwt,
      audience,
      scope: 'reports:read',
      intent: 'summarise the weekly report',
    })
    const principal = { type: 'exchanged_token' as const, token: exchanged.response.access_token }
    const d = await authz.authorizer.authorize({
      principal,
      action: 'read',
      resource: 's3:reports',
    })
    assert.equal(d.decision, 'allow')
    assert.equal(d.principal, reporter)
    assert.deepEqual(d.determiningPolicies, ['reports-agent@1'])
    const scoped = await authz.authorizer.authorize({ principal, action: 'whoami', resource: 'x' })
    assert.equal(scoped.decision, 'allow')
    // A caller may not replace the token's chain.
    await assert.rejects(
      authz.authorizer.authorize({
        principal,
        action: 'read',
        resource: 's3:reports',
        context: { delegationChain: [] },
      }),
      { code: 'TSR_VALIDATION' },
    )
    // The token's jti on the deny-list denies it, whatever the policies say.
    await createRevocationList({ store, clock }).add({
      targetType: 'jti',
      value: exchanged.svid.jti,
    })
    await authz.authorizer.refresh()
    const revoked = await authz.authorizer.authorize({
      principal,
      action: 'read',
      resource: 's3:reports',
    })
    assert.equal(revoked.decision, 'deny')
    assert.equal(revoked.reason?.revocation?.targetType, 'jti')
  })

  it('parses untrusted principals without throwing anything but TesseraErrors (fuzz)', () => {
    const bundles = () => new Map()
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.record({ type: fc.constant('x509_svid' as const), chain: fc.string() }),
          fc.record({
            type: fc.constant('x509_svid' as const),
            chain: fc
              .base64String()
              .map((b) => `-----BEGIN CERTIFICATE-----\n${b}\n-----END CERTIFICATE-----`),
          }),
          fc.record({ type: fc.constant('jwt_svid' as const), token: fc.string() }),
          fc.record({
            type: fc.constant('exchanged_token' as const),
            token: fc
              .tuple(fc.base64String(), fc.base64String(), fc.base64String())
              .map((p) => p.join('.')),
          }),
        ),
        (input) => {
          try {
            resolvePrincipal(input, new Date(), { bundles, defaultAudience: 'a' })
          } catch (err) {
            assert.equal((err as Error).name, 'TesseraError', String(err))
          }
        },
      ),
      { numRuns: 500 },
    )
    assert.throws(
      () => pemCertificates('-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----'),
      {
        code: 'TSR_VALIDATION',
      },
    )
  })
})
