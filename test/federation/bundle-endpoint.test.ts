import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { get } from 'node:https'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createCertificateAuthority, type Ca } from '../../src/ca/ca.js'
import { createDiskKeyManager } from '../../src/ca/key-manager.js'
import { startBundleEndpoint, type BundleEndpoint } from '../../src/federation/bundle-endpoint.js'
import { createBundleFetcher } from '../../src/federation/bundle-fetcher.js'
import { createFederation, type Federation } from '../../src/federation/federation.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import { parseBundle, serializeBundle } from '../../src/spiffe/bundle.js'
import { openStore, type Store } from '../../src/store/index.js'
import { tempDir } from '../cli/support.js'
import { createTestPki } from '../support/openssl-pki.js'

describe('federation between two Tessera trust domains over real bundle endpoints', () => {
  const clock = createFixedClock(new Date())
  let ourStore: Store
  let theirStore: Store
  let theirCa: Ca
  let spiffeEndpoint: BundleEndpoint
  let webEndpoint: BundleEndpoint
  let federation: Federation
  const web = createTestPki('spiffe://web-root')
  const webLeaf = web.leaf(['DNS:localhost', 'IP:127.0.0.1'])

  before(async () => {
    ;[ourStore, theirStore] = await Promise.all([
      openStore({ backend: 'pglite' }),
      openStore({ backend: 'pglite' }),
    ])
    theirCa = await createCertificateAuthority({
      store: theirStore,
      keyManager: createDiskKeyManager(randomBytes(32)),
      trustDomain: 'partner.org',
      clock,
      refreshHintSeconds: 60,
    })
    spiffeEndpoint = await startBundleEndpoint({
      host: '127.0.0.1',
      port: 0,
      config: { profile: 'https_spiffe' },
      ca: theirCa,
      clock,
    })
    const dir = tempDir()
    writeFileSync(join(dir, 'cert.pem'), webLeaf.certPem)
    writeFileSync(join(dir, 'key.pem'), webLeaf.keyPem)
    webEndpoint = await startBundleEndpoint({
      host: '127.0.0.1',
      port: 0,
      config: {
        profile: 'https_web',
        certFile: join(dir, 'cert.pem'),
        keyFile: join(dir, 'key.pem'),
      },
      ca: theirCa,
      clock,
    })
    federation = createFederation({
      store: ourStore,
      clock,
      ownTrustDomain: 'example.org',
      parseBundle,
      fetchBundle: createBundleFetcher({ extraWebRoots: [web.root.certPem], timeoutMs: 5000 }),
    })
  })
  after(async () => {
    await spiffeEndpoint?.close()
    await webEndpoint?.close()
    await ourStore?.close()
    await theirStore?.close()
  })

  it('https_spiffe: the endpoint presents its SVID, we check it against their bundle, and follow their CA rotation', async () => {
    assert.equal(spiffeEndpoint.spiffeId, 'spiffe://partner.org/tessera/bundle-endpoint')
    const initial = await theirCa.bundle()
    await federation.add({
      trustDomain: 'partner.org',
      bundleEndpointUrl: spiffeEndpoint.url,
      profile: 'https_spiffe',
      endpointSpiffeId: spiffeEndpoint.spiffeId!,
      trustBundle: serializeBundle(initial),
    })
    const first = await federation.refresh('partner.org')
    assert.equal(first.outcome, 'unchanged', JSON.stringify(first))

    // Emergency rotation on their side: a new X.509 CA key is published.
    await theirCa.taint({ purpose: 'x509_ca' })
    const rotated = await theirCa.bundle()
    assert.ok(rotated.sequence > initial.sequence)
    const second = await federation.refresh('partner.org')
    assert.deepEqual(second, {
      trustDomain: 'partner.org',
      outcome: 'updated',
      sequence: rotated.sequence,
    })
    const held = (await federation.bundles()).get('partner.org')!
    assert.deepEqual(
      held.x509Authorities.map((d) => d.toString('base64')).sort(),
      rotated.x509Authorities.map((d) => d.toString('base64')).sort(),
    )
    assert.equal(held.jwtAuthorities.length, rotated.jwtAuthorities.length)
  })

  it('https_spiffe: an endpoint is refused when we start from the wrong bundle', async () => {
    const strangerStore = await openStore({ backend: 'pglite' })
    after(() => strangerStore.close())
    const stranger = await createCertificateAuthority({
      store: strangerStore,
      keyManager: createDiskKeyManager(randomBytes(32)),
      trustDomain: 'partner2.org',
      clock,
    })
    await federation.add({
      trustDomain: 'partner2.org',
      bundleEndpointUrl: spiffeEndpoint.url,
      profile: 'https_spiffe',
      endpointSpiffeId: 'spiffe://partner2.org/tessera/bundle-endpoint',
      trustBundle: serializeBundle(await stranger.bundle()),
    })
    const r = await federation.refresh('partner2.org')
    assert.equal(r.outcome, 'failed')
  })

  it('https_web: the same bundle behind a Web PKI certificate', async () => {
    await federation.add({
      trustDomain: 'partner-web.org',
      bundleEndpointUrl: webEndpoint.url.replace('127.0.0.1', 'localhost'),
      profile: 'https_web',
    })
    // The served bundle is partner.org's; stored under the relationship's name it must parse as
    // that trust domain's bundle, which it does (bundles carry no trust domain name).
    const r = await federation.refresh('partner-web.org')
    assert.equal(r.outcome, 'updated', JSON.stringify(r))
  })

  it('answers only GET / and /bundle', async () => {
    const status = (path: string) =>
      new Promise<number>((resolve, reject) => {
        get(
          webEndpoint.url.replace(/\/$/, path),
          { ca: web.root.certPem, servername: 'localhost' },
          (res) => {
            res.resume()
            resolve(res.statusCode ?? 0)
          },
        ).on('error', reject)
      })
    assert.equal(await status('/bundle'), 200)
    assert.equal(await status('/other'), 404)
  })
})
