import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createServer, type Server } from 'node:tls'
import { after, before, describe, it } from 'node:test'
import { createFixedClock } from '../../src/runtime/clock.js'
import { openStore, type Store } from '../../src/store/index.js'
import { cliOn, tempDir } from '../cli/support.js'

/** A root → intermediate → leaf chain made by the openssl command line. */
function opensslChain(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  ssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'root.key',
    '-out',
    'root.pem',
    '-days',
    '30',
    '-subj',
    '/O=Test/CN=Test Root',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  )
  ssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'int.key',
    '-out',
    'int.csr',
    '-subj',
    '/O=Test/CN=Test Issuing',
  )
  writeFileSync(
    join(dir, 'int.ext'),
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n',
  )
  ssl(
    'x509',
    '-req',
    '-in',
    'int.csr',
    '-CA',
    'root.pem',
    '-CAkey',
    'root.key',
    '-set_serial',
    '2',
    '-days',
    '30',
    '-extfile',
    'int.ext',
    '-out',
    'int.pem',
  )
  ssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'leaf.key',
    '-out',
    'leaf.csr',
    '-subj',
    '/CN=payments.test',
  )
  writeFileSync(
    join(dir, 'leaf.ext'),
    'subjectAltName=DNS:payments.test,URI:spiffe://test.example/ns/pay/sa/api\nextendedKeyUsage=serverAuth\n',
  )
  ssl(
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'int.pem',
    '-CAkey',
    'int.key',
    '-set_serial',
    '0x0bad1dea',
    '-days',
    '7',
    '-extfile',
    'leaf.ext',
    '-out',
    'leaf.pem',
  )
}

describe('tessera discover tls against a real node:tls server', () => {
  const dir = tempDir()
  let server: Server
  let port: number
  let store: Store
  const servernames: (string | undefined)[] = []
  const clock = createFixedClock(new Date())
  before(async () => {
    opensslChain(dir)
    const chain =
      readFileSync(join(dir, 'leaf.pem'), 'utf8') + readFileSync(join(dir, 'int.pem'), 'utf8')
    server = createServer(
      {
        key: readFileSync(join(dir, 'leaf.key')),
        cert: chain,
        SNICallback: (name, cb) => {
          servernames.push(name)
          cb(null)
        },
      },
      (s) => s.end(),
    )
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as AddressInfo).port
    store = await openStore({ backend: 'pglite' })
  })
  after(async () => {
    server.close()
    await store.close()
  })

  it('reads the served chain with SNI, records that it did not verify, and ingests it', async () => {
    const r = await cliOn(store, clock).run(
      'discover',
      'tls',
      `127.0.0.1:${port}`,
      '--sni',
      'payments.test',
      '--json',
    )
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as {
      certificates: {
        position: number
        subject: string
        issuer: string
        verified: boolean
        verifyError?: string
        spiffeIds: string[]
        key: string
      }[]
      run: { seen: number; new: number; status: string; scope: string }
    }
    assert.equal(servernames.at(-1), 'payments.test')
    assert.deepEqual(
      out.certificates.map((c) => [c.position, c.subject]),
      [
        [0, 'CN=payments.test'],
        [1, 'O=Test, CN=Test Issuing'],
      ],
    )
    assert.equal(out.certificates[0]!.verified, false)
    assert.match(
      out.certificates[0]!.verifyError!,
      /UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|LOCAL_ISSUER/,
    )
    assert.deepEqual(out.certificates[0]!.spiffeIds, ['spiffe://test.example/ns/pay/sa/api'])
    assert.equal(out.certificates[0]!.key, 'rsa 2048')
    assert.equal(out.run.status, 'succeeded')
    assert.equal(out.run.scope, 'delta')
    assert.ok(out.run.new >= 5, JSON.stringify(out.run))
    // The openssl view of the leaf matches what was recorded.
    const serial = execFileSync(
      'openssl',
      ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-serial'],
      { encoding: 'utf8' },
    )
    assert.match(serial, /serial=0BAD1DEA/i)
    const shown = await cliOn(store, clock).run(
      'inventory',
      'show',
      'spiffe://test.example/ns/pay/sa/api',
      '--json',
    )
    const detail = JSON.parse(shown.stdout) as {
      credentials: {
        attributes?: unknown
        issuer: string
        locations: { path: string; host: string }[]
      }[]
    }
    assert.equal(detail.credentials[0]!.issuer, 'O=Test, CN=Test Issuing')
    assert.equal(detail.credentials[0]!.locations[0]!.path, `tls://127.0.0.1:${port}`)
  })

  it('verifies against a given CA, and the human table shows it', async () => {
    const r = await cliOn(store, clock).run(
      'discover',
      'tls',
      `localhost:${port}`,
      '--sni',
      'payments.test',
      '--ca',
      join(dir, 'root.pem'),
    )
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /ENDPOINT\s+#\s+SUBJECT/)
    assert.match(
      r.stdout,
      /localhost:\d+\s+0\s+CN=payments\.test\s+spiffe:\/\/test\.example.*rsa 2048\s+yes/,
    )
    // A verified chain is reported as verified, so it ends at the trust anchor.
    assert.match(r.stdout, /localhost:\d+\s+2\s+O=Test, CN=Test Root .* yes/)
  })

  it('an endpoint that refuses is reported by name with exit code 1; the others are still read', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer({})
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port
        s.close(() => resolve(p))
      })
    })
    const r = await cliOn(store, clock).run(
      'discover',
      'tls',
      `127.0.0.1:${closed}`,
      `127.0.0.1:${port}`,
      '--json',
    )
    assert.equal(r.code, 1)
    const out = JSON.parse(r.stdout) as {
      certificates: unknown[]
      run: { errors: number; problems: string[]; status: string }
    }
    assert.equal(out.certificates.length, 2)
    assert.equal(out.run.errors, 1)
    assert.equal(out.run.problems[0], `TSR_DISCOVERY_SOURCE: tls 127.0.0.1:${closed}: ECONNREFUSED`)
  })

  it('refuses a malformed endpoint as a usage error', async () => {
    const r = await cliOn(store, clock).run('discover', 'tls', 'host:99999')
    assert.equal(r.code, 2)
    assert.match(r.stderr, /"host:99999" is not host:port/)
  })
})
