import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { validateX509Svid } from '../spiffe/x509-svid.js'
import type { TrustBundle } from '../spiffe/types.js'
import { openStore, type Store } from '../store/store.js'
import { createCertificateAuthority, type Ca } from './ca.js'
import { createDiskKeyManager } from './key-manager.js'
import { parseUpstreamCa, toPem } from './upstream.js'

/**
 * The CA's output checked by outside clients: openssl (verify and the certificate text) and
 * Node's TLS 1.3 stack (a mutual handshake between two workloads holding minted SVIDs).
 */
const dir = mkdtempSync(join(tmpdir(), 'tessera-interop-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}
function write(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

async function mint(ca: Ca, spiffeId: string): Promise<{ chain: Buffer[]; key: KeyObject }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const [svid] = await ca.signX509Svids([{ spiffeId, publicKey }])
  return { chain: svid!.certChain, key: privateKey }
}

/** The extension section of `openssl x509 -text`, as trimmed lines. */
function extensionText(der: Buffer, name: string): string[] {
  const text = openssl(['x509', '-in', write(name, toPem(der)), '-noout', '-text'])
  const lines = text.split('\n').map((l) => l.trim())
  const from = lines.indexOf('X509v3 extensions:') + 1
  const to = lines.findIndex((l, k) => k > from && l.startsWith('Signature Algorithm'))
  return lines.slice(from, to)
}

describe('CA output with openssl and TLS', () => {
  let store: Store
  let ca: Ca
  let bundle: TrustBundle
  before(async () => {
    store = await openStore({ backend: 'pglite' })
    ca = await createCertificateAuthority({
      store,
      keyManager: createDiskKeyManager(randomBytes(32)),
      trustDomain: 'example.org',
    })
    bundle = await ca.bundle()
  })
  after(async () => {
    await store?.close()
  })

  it('openssl verify accepts a minted leaf against the bundle root', async () => {
    const { chain } = await mint(ca, 'spiffe://example.org/web')
    const root = write('root.pem', bundle.x509Authorities.map(toPem).join(''))
    const leaf = write('leaf.pem', toPem(chain[0]!))
    assert.equal(openssl(['verify', '-CAfile', root, leaf]).trim(), `${leaf}: OK`)
    // And with the purposes TLS checks.
    assert.equal(
      openssl(['verify', '-purpose', 'sslclient', '-CAfile', root, leaf]).trim(),
      `${leaf}: OK`,
    )
    assert.equal(
      openssl(['verify', '-purpose', 'sslserver', '-CAfile', root, leaf]).trim(),
      `${leaf}: OK`,
    )
  })

  it('openssl x509 -text shows exactly the leaf and CA profiles', async () => {
    const { chain } = await mint(ca, 'spiffe://example.org/ns/prod/sa/web')
    const leaf = extensionText(chain[0]!, 'leaf-text.pem')
    const after = (header: string) => leaf[leaf.indexOf(header) + 1]
    assert.equal(after('X509v3 Basic Constraints: critical'), 'CA:FALSE')
    assert.equal(after('X509v3 Key Usage: critical'), 'Digital Signature')
    assert.equal(
      after('X509v3 Extended Key Usage:'),
      'TLS Web Server Authentication, TLS Web Client Authentication',
    )
    assert.equal(
      after('X509v3 Subject Alternative Name:'),
      'URI:spiffe://example.org/ns/prod/sa/web',
    )
    assert.ok(leaf.includes('X509v3 Subject Key Identifier:'))
    assert.ok(leaf.includes('X509v3 Authority Key Identifier:'))
    assert.equal(leaf.filter((l) => l.startsWith('X509v3 ')).length, 6, leaf.join('\n'))
    const root = extensionText(bundle.x509Authorities[0]!, 'root-text.pem')
    const rootAfter = (header: string) => root[root.indexOf(header) + 1]
    assert.equal(rootAfter('X509v3 Basic Constraints: critical'), 'CA:TRUE')
    assert.equal(rootAfter('X509v3 Key Usage: critical'), 'Certificate Sign, CRL Sign')
    assert.equal(rootAfter('X509v3 Subject Alternative Name:'), 'URI:spiffe://example.org')
    const cert = new X509Certificate(chain[0]!)
    assert.equal(
      new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime(),
      3600_000 + 10_000,
    )
  })

  it("two workloads complete a TLS 1.3 mutual handshake and check each other's SPIFFE ID", async () => {
    const server = await mint(ca, 'spiffe://example.org/server')
    const client = await mint(ca, 'spiffe://example.org/client')
    const roots = bundle.x509Authorities.map(toPem).join('')
    const peerIds: string[] = []
    const peerId = (socket: tls.TLSSocket) => {
      const peer = socket.getPeerX509Certificate()!
      return validateX509Svid([Buffer.from(peer.raw)], bundle, new Date()).spiffeId
    }
    const srv = tls.createServer(
      {
        cert: server.chain.map(toPem).join(''),
        key: server.key.export({ type: 'pkcs8', format: 'pem' }),
        ca: roots,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (socket) => {
        peerIds.push(`server saw ${peerId(socket)}`)
        socket.end(`hello ${peerId(socket)}`)
      },
    )
    const serverErrors: Error[] = []
    srv.on('tlsClientError', (e: Error) => serverErrors.push(e))
    srv.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    const port = (srv.address() as { port: number }).port
    try {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        cert: client.chain.map(toPem).join(''),
        key: client.key.export({ type: 'pkcs8', format: 'pem' }),
        ca: roots,
        minVersion: 'TLSv1.3',
        // SPIFFE peers are named by URI SAN, not host name: check the SPIFFE ID instead.
        checkServerIdentity: () => undefined,
      })
      await once(socket, 'secureConnect')
      assert.equal(socket.getProtocol(), 'TLSv1.3')
      assert.equal(socket.authorized, true)
      peerIds.push(`client saw ${peerId(socket)}`)
      let body = ''
      socket.setEncoding('utf8')
      socket.on('data', (d: string) => (body += d))
      await once(socket, 'end')
      assert.equal(body, 'hello spiffe://example.org/client')
      assert.deepEqual(peerIds.sort(), [
        'client saw spiffe://example.org/server',
        'server saw spiffe://example.org/client',
      ])

      // A workload of a foreign CA is refused by the server.
      const foreignStore = await openStore({ backend: 'pglite' })
      try {
        const foreign = await createCertificateAuthority({
          store: foreignStore,
          keyManager: createDiskKeyManager(randomBytes(32)),
          trustDomain: 'example.org',
        })
        const intruder = await mint(foreign, 'spiffe://example.org/client')
        const bad = tls.connect({
          host: '127.0.0.1',
          port,
          cert: intruder.chain.map(toPem).join(''),
          key: intruder.key.export({ type: 'pkcs8', format: 'pem' }),
          ca: roots,
          minVersion: 'TLSv1.3',
          checkServerIdentity: () => undefined,
        })
        let got = ''
        let failed: Error | undefined
        bad.on('data', (d: Buffer) => (got += d.toString()))
        bad.on('error', (e: Error) => (failed = e))
        await once(bad, 'close')
        assert.equal(got, '', 'the server sent nothing to the intruder')
        void failed
        assert.ok(serverErrors.length >= 1, 'the server refused the TLS session')
        assert.equal(peerIds.length, 2, 'the server never accepted the intruder')
        bad.destroy()
      } finally {
        await foreignStore.close()
      }
    } finally {
      srv.close()
    }
  })

  it('works as an intermediate under an upstream CA made by openssl (root and root → intermediate)', async () => {
    const upKey = join(dir, 'up.key')
    const upRoot = join(dir, 'up-root.pem')
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', upKey])
    openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      upKey,
      '-subj',
      '/O=Upstream/CN=Upstream Root',
      '-days',
      '30',
      '-out',
      upRoot,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ])
    // An upstream intermediate signed by the upstream root.
    const midKey = join(dir, 'mid.key')
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', midKey])
    const csr = join(dir, 'mid.csr')
    openssl([
      'req',
      '-new',
      '-key',
      midKey,
      '-subj',
      '/O=Upstream/CN=Upstream Issuing CA',
      '-out',
      csr,
    ])
    const ext = write(
      'mid.ext',
      'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
    )
    const mid = join(dir, 'mid.pem')
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      upRoot,
      '-CAkey',
      upKey,
      '-days',
      '20',
      '-extfile',
      ext,
      '-out',
      mid,
    ])

    for (const [name, certPem, keyPem] of [
      ['root', readFileSync(upRoot, 'utf8'), readFileSync(upKey, 'utf8')],
      [
        'intermediate',
        readFileSync(mid, 'utf8') + readFileSync(upRoot, 'utf8'),
        readFileSync(midKey, 'utf8'),
      ],
    ] as const) {
      const upstream = parseUpstreamCa(certPem, keyPem)
      const s = await openStore({ backend: 'pglite' })
      try {
        const sub = await createCertificateAuthority({
          store: s,
          keyManager: createDiskKeyManager(randomBytes(32)),
          trustDomain: 'example.org',
          upstream,
        })
        const b = await sub.bundle()
        assert.equal(b.x509Authorities.length, 1, name)
        assert.ok(
          b.x509Authorities[0]!.equals(new X509Certificate(readFileSync(upRoot)).raw),
          'the bundle holds the upstream root',
        )
        const { chain } = await mint(sub, 'spiffe://example.org/api')
        assert.equal(chain.length, name === 'root' ? 2 : 3)
        const leaf = write(`${name}-leaf.pem`, toPem(chain[0]!))
        const untrusted = write(`${name}-untrusted.pem`, chain.slice(1).map(toPem).join(''))
        assert.equal(
          openssl(['verify', '-CAfile', upRoot, '-untrusted', untrusted, leaf]).trim(),
          `${leaf}: OK`,
        )
        assert.equal(validateX509Svid(chain, b, new Date()).spiffeId, 'spiffe://example.org/api')
        const ours = extensionText(chain[1]!, `${name}-ca.pem`)
        assert.equal(
          ours[ours.indexOf('X509v3 Subject Alternative Name:') + 1],
          'URI:spiffe://example.org',
        )
        // Our CA certificate ends no later than the upstream certificate that signed it.
        const upstreamEnd = new X509Certificate(upstream.chain[0]!).validTo
        assert.ok(new Date(new X509Certificate(chain[1]!).validTo) <= new Date(upstreamEnd))
      } finally {
        await s.close()
      }
    }
    assert.throws(() => parseUpstreamCa(readFileSync(mid, 'utf8'), readFileSync(upKey, 'utf8')), {
      code: 'TSR_CONFIG',
    })
  })
})
