import assert from 'node:assert/strict'
import { createPrivateKey, randomUUID, generateKeyPairSync } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { isTesseraError } from '../errors.js'
import { createFixedClock } from '../runtime/clock.js'
import { openStore, type Store } from '../store/index.js'
import { generateP256, makeCaCert, makeLeafCert } from '../../test/support/fake-ca.js'
import { createJoinTokenAttestor } from './join-token-attestor.js'
import { createJoinToken } from './join-tokens.js'
import type { AttestationInput, NodeAttestor } from './node-attestor.js'
import { createNodeAttestorRegistry, createNodeAttestors } from './node-attestor-registry.js'
import { createOidcAttestor, type OidcIssuerConfig } from './oidc-attestor.js'
import { createX509PopAttestor, x509popEvidence } from './x509pop-attestor.js'

const now = new Date('2026-05-01T12:00:00Z')
const agentKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const publicKeyDer = agentKey.publicKey.export({ type: 'spki', format: 'der' })

let store: Store
before(async () => {
  store = await openStore({ backend: 'pglite' })
})
after(async () => {
  await store.close()
})

function input(evidence: unknown, extra: Partial<AttestationInput> = {}): AttestationInput {
  return { evidence, publicKeyDer, newAgentId: randomUUID(), db: store.db, now, ...extra }
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err) => {
    assert.ok(isTesseraError(err, 'TSR_ATTESTATION_FAILED'), String(err))
    assert.match(err.message, pattern)
    return true
  })
}

describe('join_token attestor', () => {
  it('attests once; a replayed, expired, unknown or malformed token is refused', async () => {
    const clock = createFixedClock(now)
    const attestor = createJoinTokenAttestor()
    const { token } = await createJoinToken(store, { ttlSeconds: 60 }, clock)
    const first = await attestor.attest(input({ token }))
    assert.equal(first.kind, 'attested')
    await rejectsWith(attestor.attest(input({ token })), /used already/)

    const expired = await createJoinToken(store, { ttlSeconds: 60 }, clock)
    await rejectsWith(
      attestor.attest(input({ token: expired.token }, { now: new Date(now.getTime() + 61_000) })),
      /expired/,
    )
    await rejectsWith(attestor.attest(input({ token: `tjt_${'A'.repeat(43)}` })), /unknown/)
    await rejectsWith(attestor.attest(input({ token: 'hello' })), /malformed/)
    await rejectsWith(attestor.attest(input('nope')), /evidence must be/)
  })

  it('lets only one of two racing agents consume a token', async () => {
    const { token } = await createJoinToken(store, {}, createFixedClock(now))
    const attestor = createJoinTokenAttestor()
    const results = await Promise.allSettled([
      attestor.attest(input({ token })),
      attestor.attest(input({ token })),
    ])
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  })
})

describe('oidc attestor against a real local JWKS server', () => {
  let server: Server
  let issuer: string
  let ghIssuer: string
  let k8sIssuer: string
  let key: CryptoKeyLike
  let jwk: JWK
  const requests: string[] = []
  type CryptoKeyLike = Awaited<ReturnType<typeof generateKeyPair>>['privateKey']

  before(async () => {
    const pair = await generateKeyPair('RS256')
    key = pair.privateKey
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }
    server = createServer((req, res) => {
      requests.push(req.url ?? '')
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      if (req.url === '/k8s/.well-known/openid-configuration') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ issuer: `${base}/k8s`, jwks_uri: `${base}/k8s/openid/v1/jwks` }))
      } else if (req.url === '/k8s/openid/v1/jwks' || req.url === '/gh/.well-known/jwks') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ keys: [jwk] }))
      } else {
        res.statusCode = 404
        res.end()
      }
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    ghIssuer = `${issuer}/gh`
    k8sIssuer = `${issuer}/k8s`
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  const githubClaims = {
    sub: 'repo:acme/app:environment:prod',
    repository: 'acme/app',
    repository_id: '123',
    repository_owner: 'acme',
    repository_owner_id: '456',
    repository_visibility: 'private',
    ref: 'refs/heads/main',
    ref_type: 'branch',
    workflow: 'deploy',
    workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main',
    job_workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main',
    environment: 'prod',
    event_name: 'push',
    actor: 'octocat',
    run_id: '9',
    run_attempt: '1',
    runner_environment: 'github-hosted',
  }

  function configs(): OidcIssuerConfig[] {
    return [
      {
        name: 'github',
        issuer: ghIssuer,
        jwksUri: `${ghIssuer}/.well-known/jwks`,
        audience: ['tessera'],
        profile: 'github',
        requiredClaims: { repository_owner: 'acme' },
      },
      {
        name: 'k8s',
        issuer: k8sIssuer,
        audience: ['tessera-agent'],
        profile: 'kubernetes',
        requiredClaims: { 'kubernetes.io/namespace': 'tessera' },
      },
    ]
  }

  async function sign(
    claims: Record<string, unknown>,
    opts: { iss?: string; aud?: string; exp?: number; alg?: string } = {},
  ): Promise<string> {
    const t = Math.floor(now.getTime() / 1000)
    return new SignJWT(claims)
      .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: 'k1', typ: 'JWT' })
      .setIssuer(opts.iss ?? ghIssuer)
      .setAudience(opts.aud ?? 'tessera')
      .setIssuedAt(t - 10)
      .setExpirationTime(opts.exp ?? t + 300)
      .setJti(randomUUID())
      .sign(key)
  }

  it('attests a GitHub Actions token: selectors from its claims, one agent per job', async () => {
    const attestor = createOidcAttestor(configs())
    const token = await sign(githubClaims)
    const out = await attestor.attest(input({ token }))
    assert.equal(out.kind, 'attested')
    if (out.kind !== 'attested') return
    assert.match(out.agentPath, /^github\/[0-9a-f]{32}$/)
    const values = out.selectors.map((s) => `${s.type}:${s.value}`)
    for (const want of [
      'github:repository:acme/app',
      'github:repository_owner:acme',
      'github:ref:refs/heads/main',
      'github:workflow:deploy',
      'github:environment:prod',
      'github:job_workflow_ref:acme/app/.github/workflows/deploy.yml@refs/heads/main',
    ]) {
      assert.ok(values.includes(want), want)
    }
    const again = await attestor.attest(input({ token: await sign(githubClaims) }))
    assert.notEqual(again.kind === 'attested' && again.agentPath, out.agentPath)
  })

  it('attests a Kubernetes projected service-account token found through OIDC discovery', async () => {
    const attestor = createOidcAttestor(configs())
    const claims = {
      sub: 'system:serviceaccount:tessera:tessera-agent',
      'kubernetes.io': {
        namespace: 'tessera',
        node: { name: 'node-1', uid: 'n-uid-1' },
        pod: { name: 'tessera-agent-x7k2p', uid: 'p-uid-1' },
        serviceaccount: { name: 'tessera-agent', uid: 'sa-uid-1' },
      },
    }
    const token = await sign(claims, { iss: k8sIssuer, aud: 'tessera-agent' })
    const out = await attestor.attest(input({ token }))
    assert.equal(out.kind, 'attested')
    if (out.kind !== 'attested') return
    const values = out.selectors.map((s) => `${s.type}:${s.value}`)
    for (const want of [
      'k8s:namespace:tessera',
      'k8s:serviceaccount:tessera-agent',
      'k8s:pod:tessera-agent-x7k2p',
      'k8s:pod_uid:p-uid-1',
      'k8s:node:node-1',
    ]) {
      assert.ok(values.includes(want), want)
    }
    assert.ok(requests.includes('/k8s/.well-known/openid-configuration'))
    // Same pod, new token: the same agent.
    const again = await attestor.attest(
      input({ token: await sign(claims, { iss: k8sIssuer, aud: 'tessera-agent' }) }),
    )
    assert.equal(again.kind === 'attested' && again.agentPath, out.agentPath)
    const otherNs = await sign(
      { ...claims, 'kubernetes.io': { ...claims['kubernetes.io'], namespace: 'default' } },
      { iss: k8sIssuer, aud: 'tessera-agent' },
    )
    await rejectsWith(attestor.attest(input({ token: otherNs })), /kubernetes.io\/namespace/)
  })

  it('refuses expired, wrong-audience, unknown-issuer, foreign-owner, none and HS256 tokens', async () => {
    const attestor = createOidcAttestor(configs())
    const t = Math.floor(now.getTime() / 1000)
    await rejectsWith(
      attestor.attest(input({ token: await sign(githubClaims, { exp: t - 120 }) })),
      /expired/,
    )
    await rejectsWith(
      attestor.attest(input({ token: await sign(githubClaims, { aud: 'someone-else' }) })),
      /aud claim check failed/,
    )
    await rejectsWith(
      attestor.attest(input({ token: await sign(githubClaims, { iss: 'https://evil.test' }) })),
      /issuer that is not configured/,
    )
    await rejectsWith(
      attestor.attest(
        input({ token: await sign({ ...githubClaims, repository_owner: 'mallory' }) }),
      ),
      /repository_owner/,
    )
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const payload = { ...githubClaims, iss: ghIssuer, aud: 'tessera', exp: t + 300, jti: 'x' }
    const none = `${b64({ alg: 'none' })}.${b64(payload)}.`
    await rejectsWith(attestor.attest(input({ token: none })), /algorithm is not allowed/)
    const hs = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .sign(new TextEncoder().encode('x'.repeat(32)))
    await rejectsWith(attestor.attest(input({ token: hs })), /algorithm is not allowed/)
    // A token signed by another key with our kid.
    const other = await generateKeyPair('RS256')
    const forged = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .sign(other.privateKey)
    await rejectsWith(attestor.attest(input({ token: forged })), /signature does not verify/)
  })

  it('refuses a GitHub profile without a required owner or repository', () => {
    assert.throws(
      () =>
        createOidcAttestor([
          {
            name: 'github',
            issuer: 'https://token.actions.githubusercontent.com',
            audience: ['x'],
            profile: 'github',
          },
        ]),
      /requiredClaims/,
    )
  })

  it('never crashes on hostile evidence: always TSR_ATTESTATION_FAILED', async () => {
    const registry = createNodeAttestorRegistry([
      createOidcAttestor(configs()),
      createJoinTokenAttestor(),
    ])
    const jwtish = fc
      .tuple(fc.base64String(), fc.base64String(), fc.base64String())
      .map((p) => p.join('.'))
    const hostileJson = fc.record({
      alg: fc.constantFrom('none', 'HS256', 'RS256', 'ES256'),
      iss: fc.oneof(fc.constant(ghIssuer), fc.string()),
      aud: fc.oneof(fc.constant('tessera'), fc.anything()),
      exp: fc.oneof(fc.integer(), fc.string()),
    })
    const unsignedJwt = hostileJson.map(
      ({ alg, ...payload }) =>
        `${Buffer.from(JSON.stringify({ alg, kid: 'k1' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`,
    )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('oidc', 'join_token', 'x509pop', 'nope'),
        fc.oneof(fc.anything(), fc.record({ token: fc.oneof(fc.anything(), jwtish, unsignedJwt) })),
        async (type, evidence) => {
          try {
            await registry.get(type).attest(input(evidence))
            assert.fail('hostile evidence attested')
          } catch (err) {
            assert.ok(isTesseraError(err, 'TSR_ATTESTATION_FAILED'), String(err))
            assert.match(err.message, /^nodeattestor\(/)
          }
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('x509pop attestor', () => {
  it('verifies the chain and the challenge signature, bound to the agent key', async () => {
    const caKeys = await generateP256()
    const ca = await makeCaCert(
      'CN=node ca',
      caKeys,
      new Date(now.getTime() - 86_400_000),
      new Date(now.getTime() + 86_400_000),
    )
    const nodeKeys = await generateP256()
    const nodeCert = await makeLeafCert({
      issuer: ca,
      issuerKey: caKeys.privateKey,
      publicKey: nodeKeys.publicKey,
      subject: 'CN=node-1.example.org',
      dns: ['node-1.example.org'],
      notBefore: new Date(now.getTime() - 3600_000),
      notAfter: new Date(now.getTime() + 3600_000),
    })
    const nodePrivate = createPrivateKey({
      key: Buffer.from(await crypto.subtle.exportKey('pkcs8', nodeKeys.privateKey as never)),
      format: 'der',
      type: 'pkcs8',
    })
    const attestor = createX509PopAttestor({ rootsPem: ca.toString('pem') })
    const agent = x509popEvidence([Buffer.from(nodeCert.rawData)], nodePrivate)
    const evidence = await agent.evidence()
    const round1 = await attestor.attest(input(evidence))
    assert.equal(round1.kind, 'challenge')
    if (round1.kind !== 'challenge') return
    const response = await agent.answer!(round1.challenge, publicKeyDer)
    const done = await attestor.attest(input(evidence, { challengeResponse: response }))
    assert.equal(done.kind, 'attested')
    if (done.kind !== 'attested') return
    assert.match(done.agentPath, /^[0-9a-f]{40}$/)
    assert.ok(done.selectors.some((s) => s.value === 'subject:cn:node-1.example.org'))

    // The response does not work for another SVID key, after expiry, or with a tampered signature.
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
    await rejectsWith(
      attestor.attest(
        input(evidence, {
          challengeResponse: response,
          publicKeyDer: otherKey.export({ type: 'spki', format: 'der' }),
        }),
      ),
      /another certificate or key/,
    )
    await rejectsWith(
      attestor.attest(
        input(evidence, {
          challengeResponse: response,
          now: new Date(now.getTime() + 61_000),
        }),
      ),
      /expired/,
    )
    const tampered = { ...(response as object), signature: Buffer.alloc(70).toString('base64') }
    await rejectsWith(
      attestor.attest(input(evidence, { challengeResponse: tampered })),
      /signature does not verify/,
    )
    // A certificate from another CA.
    const otherCaKeys = await generateP256()
    const otherCa = await makeCaCert('CN=other', otherCaKeys, ca.notBefore, ca.notAfter)
    const stranger = await makeLeafCert({
      issuer: otherCa,
      issuerKey: otherCaKeys.privateKey,
      publicKey: nodeKeys.publicKey,
      subject: 'CN=x',
      notBefore: nodeCert.notBefore,
      notAfter: nodeCert.notAfter,
    })
    await rejectsWith(
      attestor.attest(input({ certChain: [Buffer.from(stranger.rawData).toString('base64')] })),
      /trusted root/,
    )
  })

  it('registry builds the configured attestors and refuses unknown types', () => {
    const registry = createNodeAttestorRegistry(createNodeAttestors({}))
    assert.deepEqual(registry.types, ['join_token'])
    assert.throws(() => registry.get('tpm'), /nodeattestor\(tpm\): not configured/)
    const attestors: NodeAttestor[] = [createJoinTokenAttestor(), createJoinTokenAttestor()]
    assert.throws(() => createNodeAttestorRegistry(attestors), /twice/)
  })
})
