import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { isTesseraError } from '../../src/errors.js'
import { createBundleFetcher } from '../../src/federation/bundle-fetcher.js'
import {
  createFederation,
  nextPollDelaySeconds,
  type BundleParser,
  type Federation,
} from '../../src/federation/federation.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { createTestPki, type TestCert } from '../support/openssl-pki.js'
import { testBackends } from '../support/stores.js'

/** A bundle document as a foreign SPIFFE server publishes it. */
function bundleDoc(roots: TestCert[], sequence: number, hint = 120): string {
  return JSON.stringify({
    keys: roots.map((r) => ({
      use: 'x509-svid',
      kty: 'EC',
      crv: 'P-256',
      x5c: [r.der.toString('base64')],
    })),
    spiffe_sequence: sequence,
    spiffe_refresh_hint: hint,
  })
}

/** Enough of the bundle format for these tests; the strict parser has its own tests. */
const parseBundle: BundleParser = (json, trustDomain) => {
  const doc = JSON.parse(json) as {
    keys: { use: string; x5c?: string[] }[]
    spiffe_sequence?: number
    spiffe_refresh_hint?: number
  }
  if (!Array.isArray(doc.keys)) throw new Error('not a bundle')
  return {
    trustDomain,
    x509Authorities: doc.keys
      .filter((k) => k.use === 'x509-svid' && k.x5c?.[0])
      .map((k) => Buffer.from(k.x5c![0]!, 'base64')),
    jwtAuthorities: [],
    sequence: doc.spiffe_sequence ?? 0,
    refreshHintSeconds: doc.spiffe_refresh_hint ?? 0,
  }
}

describe('federation polling schedule', () => {
  it('follows the refresh hint within bounds and backs off after failures', () => {
    assert.equal(nextPollDelaySeconds(120, 0), 120)
    assert.equal(nextPollDelaySeconds(1, 0), 30)
    assert.equal(nextPollDelaySeconds(10 ** 7, 0), 86_400)
    assert.equal(nextPollDelaySeconds(null, 0), 300)
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((f) => nextPollDelaySeconds(300, f)),
      [10, 20, 40, 80, 160, 300],
    )
  })
})

for (const backend of testBackends()) {
  describe(`${backend.name}: federation with real bundle endpoints`, () => {
    const clock = createFixedClock('2026-11-23T10:00:00Z')
    const foreign = createTestPki('spiffe://foreign.org')
    const endpointId = 'spiffe://foreign.org/spire/server'
    const spiffeLeaf = foreign.leaf([`URI:${endpointId}`])
    const impostorLeaf = foreign.leaf(['URI:spiffe://foreign.org/not-the-server'])
    const web = createTestPki('spiffe://web-test-root')
    const webLeaf = web.leaf(['DNS:localhost', 'IP:127.0.0.1'])
    let served = bundleDoc([foreign.root], 1)
    let status = 200
    const servers: Server[] = []
    let store: Store
    let federation: Federation
    let spiffeUrl = ''
    let impostorUrl = ''
    let webUrl = ''

    const listen = async (cert: TestCert) => {
      const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(status === 200 ? served : '{}')
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      servers.push(server)
      return `https://127.0.0.1:${(server.address() as AddressInfo).port}/bundle`
    }

    before(async () => {
      store = await backend.open()
      spiffeUrl = await listen(spiffeLeaf)
      impostorUrl = await listen(impostorLeaf)
      webUrl = await listen(webLeaf)
      federation = createFederation({
        store,
        clock,
        ownTrustDomain: 'example.org',
        parseBundle,
        fetchBundle: createBundleFetcher({ extraWebRoots: [web.root.certPem], timeoutMs: 3000 }),
      })
    })
    after(async () => {
      for (const s of servers) s.close()
      await store.close()
    })

    it('https_spiffe: starts from the operator bundle, fetches, and follows a root rotation', async () => {
      const added = await federation.add({
        trustDomain: 'foreign.org',
        bundleEndpointUrl: spiffeUrl,
        profile: 'https_spiffe',
        endpointSpiffeId: endpointId,
        trustBundle: bundleDoc([foreign.root], 1),
        createdBy: 'test',
      })
      assert.equal(added.bundleSequence, 1)
      assert.deepEqual(await federation.pollDue(), [
        { trustDomain: 'foreign.org', outcome: 'unchanged', sequence: 1 },
      ])
      const view = (await federation.get('foreign.org'))!
      assert.equal(view.nextPollAt, '2026-11-23T10:02:00.000Z') // the 120 s hint
      // Nothing is due before the hint.
      clock.advance(60_000)
      assert.deepEqual(await federation.pollDue(), [])
      // The foreign domain publishes a new root beside the old one.
      const next = createTestPki('spiffe://foreign.org')
      served = bundleDoc([foreign.root, next.root], 2)
      clock.advance(60_000)
      assert.deepEqual(await federation.pollDue(), [
        { trustDomain: 'foreign.org', outcome: 'updated', sequence: 2 },
      ])
      const bundles = await federation.bundles()
      assert.equal(bundles.get('foreign.org')?.x509Authorities.length, 2)
      // Old versions are kept, closed.
      const history = await store.db
        .selectFrom('federated_bundle')
        .select(['sequence', 'valid_to'])
        .where('trust_domain', '=', 'foreign.org')
        .orderBy('version_id')
        .execute()
      assert.deepEqual(
        history.map((h) => [Number(h.sequence), h.valid_to === null]),
        [
          [1, false],
          [2, true],
        ],
      )
    })

    it('refuses a bundle with an older sequence (rollback) and keeps the one held', async () => {
      served = bundleDoc([foreign.root], 1)
      const r = await federation.refresh('foreign.org')
      assert.equal(r.outcome, 'failed')
      assert.match((r as { error: string }).error, /older than the one held/)
      assert.equal((await federation.bundles()).get('foreign.org')?.sequence, 2)
      const view = (await federation.get('foreign.org'))!
      assert.equal(view.consecutiveFailures, 1)
      assert.equal(Date.parse(view.nextPollAt) - clock.now().getTime(), 10_000) // backed off
      served = bundleDoc([foreign.root], 3)
      assert.equal((await federation.refresh('foreign.org')).outcome, 'updated')
      assert.equal((await federation.get('foreign.org'))!.consecutiveFailures, 0)
    })

    it('https_spiffe: an endpoint presenting another SPIFFE ID is refused', async () => {
      await federation.add({
        trustDomain: 'impostor.org',
        bundleEndpointUrl: impostorUrl,
        profile: 'https_spiffe',
        endpointSpiffeId: 'spiffe://impostor.org/spire/server',
        trustBundle: bundleDoc([foreign.root], 1),
      })
      const r = await federation.refresh('impostor.org')
      assert.equal(r.outcome, 'failed')
      assert.match(
        (r as { error: string }).error,
        /presented spiffe:\/\/foreign\.org\/not-the-server/,
      )
      await federation.remove('impostor.org')
      assert.equal(await federation.get('impostor.org'), undefined)
      assert.equal((await federation.bundles()).has('impostor.org'), false)
    })

    it('https_web: Web PKI certificate checked against the host; HTTP errors recorded', async () => {
      served = bundleDoc([web.root], 7, 60)
      await federation.add({
        trustDomain: 'partner.example',
        bundleEndpointUrl: webUrl,
        profile: 'https_web',
      })
      assert.deepEqual(await federation.refresh('partner.example'), {
        trustDomain: 'partner.example',
        outcome: 'updated',
        sequence: 7,
      })
      status = 503
      const r = await federation.refresh('partner.example')
      assert.equal(r.outcome, 'failed')
      assert.match((r as { error: string }).error, /HTTP 503/)
      status = 200
      // A web endpoint whose certificate is not for its host fails: the SPIFFE leaf has no DNS name.
      await federation.add({
        trustDomain: 'wrong-host.example',
        bundleEndpointUrl: spiffeUrl,
        profile: 'https_web',
      })
      const wrong = await federation.refresh('wrong-host.example')
      assert.equal(wrong.outcome, 'failed')
    })

    it('validates input: own trust domain, http URLs, missing endpoint ID or bundle, duplicates', async () => {
      const bad = [
        { trustDomain: 'example.org', bundleEndpointUrl: webUrl, profile: 'https_web' as const },
        {
          trustDomain: 'x.org',
          bundleEndpointUrl: 'http://x.org/b',
          profile: 'https_web' as const,
        },
        { trustDomain: 'X Org', bundleEndpointUrl: webUrl, profile: 'https_web' as const },
        { trustDomain: 'x.org', bundleEndpointUrl: webUrl, profile: 'https_spiffe' as const },
        {
          trustDomain: 'x.org',
          bundleEndpointUrl: webUrl,
          profile: 'https_spiffe' as const,
          endpointSpiffeId: 'spiffe://x.org/s',
        },
        {
          trustDomain: 'x.org',
          bundleEndpointUrl: webUrl,
          profile: 'https_spiffe' as const,
          endpointSpiffeId: 'spiffe://third.org/s',
          trustBundle: '{"keys":[]}',
        },
      ]
      for (const input of bad) {
        await assert.rejects(
          federation.add(input),
          (e) => isTesseraError(e, 'TSR_VALIDATION'),
          JSON.stringify(input),
        )
      }
      await assert.rejects(
        federation.add({
          trustDomain: 'partner.example',
          bundleEndpointUrl: webUrl,
          profile: 'https_web',
        }),
        (e) => isTesseraError(e, 'TSR_CONFLICT'),
      )
      await assert.rejects(federation.refresh('nobody.org'), (e) =>
        isTesseraError(e, 'TSR_NOT_FOUND'),
      )
    })
  })
}
