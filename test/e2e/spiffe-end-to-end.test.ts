import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { splitDerCertificates } from '../../src/agent/svid-helper.js'
import { startServer, type RunningServer } from '../../src/server/compose.js'
import {
  createWorkloadApiClient,
  type WorkloadApiClient,
  type X509SvidResponseMessage,
} from '../../src/workload-api/client.js'

const pem = (der: Buffer) => new X509Certificate(der).toString()
const quiet = new Writable({ write: (_c, _e, done) => done() })

/**
 * The whole SPIFFE path with real processes: a control plane on the embedded store, `tessera
 * agent` as a child process attested with a join token, a stock gRPC client on the socket.
 */
describe('SPIFFE end to end: server, agent process, Workload API client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-e2e-'))
  const dataDir = join(dir, 'data')
  const socket = join(dir, 'agent.sock')
  let server: RunningServer
  let port = 0
  let admin = ''
  let agent: ChildProcess
  let agentId = ''
  let client: WorkloadApiClient
  const latest: { msg?: X509SvidResponseMessage; err?: { code: number } } = {}
  const waiters: (() => void)[] = []

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(server.url + path, {
      method,
      headers: {
        authorization: `Bearer ${admin}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    const text = await res.text()
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`)
    return text ? (JSON.parse(text) as Record<string, unknown>) : {}
  }
  const until = async (what: string, ok: () => boolean, ms = 10_000) => {
    const deadline = Date.now() + ms
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise<void>((r) => {
        waiters.push(r)
        setTimeout(r, 100)
      })
    }
  }
  const start = async () => {
    server = await startServer({ dataDir, port, log: quiet })
    port = Number(new URL(server.url).port)
  }

  before(async () => {
    await start()
    admin = server.adminToken!
    const { token } = (await api('POST', '/v1/join-tokens', { ttlSeconds: 600 })) as {
      token: string
    }
    agent = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'agent',
        '--server',
        server.url,
        '--join-token',
        token,
        '--socket',
        socket,
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let err = ''
    agent.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    const banner = await new Promise<string>((resolve, reject) => {
      let out = ''
      agent.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('\n')) resolve(out.split('\n')[0]!)
      })
      agent.once('exit', (code) => reject(new Error(`agent exited ${code}: ${err}`)))
    })
    agentId = (JSON.parse(banner) as { spiffeId: string }).spiffeId
    assert.match(agentId, new RegExp(`^spiffe://${server.trustDomain}/spire/agent/join_token/`))
    client = createWorkloadApiClient(socket)
  })

  after(async () => {
    client?.close()
    agent?.kill('SIGTERM')
    await server?.close()
  })

  it('an entry created through the API reaches the agent; the workload gets an X509-SVID openssl verifies', async () => {
    const spiffeId = `spiffe://${server.trustDomain}/e2e/app`
    await api('POST', '/v1/entries', {
      spiffeId,
      parentId: agentId,
      selectors: [`unix:uid:${process.getuid!()}`],
      owner: 'team-platform',
      x509SvidTtl: 120,
    })
    client.watchX509Svids(
      (m) => {
        latest.msg = m
        waiters.splice(0).forEach((w) => w())
      },
      (e) => {
        latest.err = e
      },
    )
    await until('the SVID', () => latest.msg?.svids.some((s) => s.spiffe_id === spiffeId) ?? false)
    const svid = latest.msg!.svids.find((s) => s.spiffe_id === spiffeId)!
    const chain = splitDerCertificates(svid.x509_svid)
    const roots = splitDerCertificates(svid.bundle)
    writeFileSync(join(dir, 'leaf.pem'), pem(chain[0]!))
    writeFileSync(join(dir, 'chain.pem'), chain.slice(1).map(pem).join(''))
    writeFileSync(join(dir, 'bundle.pem'), roots.map(pem).join(''))
    const args = ['verify', '-CAfile', join(dir, 'bundle.pem')]
    if (chain.length > 1) args.push('-untrusted', join(dir, 'chain.pem'))
    const out = execFileSync('openssl', [...args, join(dir, 'leaf.pem')]).toString()
    assert.match(out, /leaf\.pem: OK/)
  })

  it('a JWT-SVID from the socket verifies with jose against the server JWKS', async () => {
    const [jwt] = await client.fetchJwtSvid(['https://api.example'])
    const jwks = createRemoteJWKSet(new URL(server.url + '/.well-known/jwks.json'))
    const { payload } = await jwtVerify(jwt!.svid, jwks, { audience: 'https://api.example' })
    assert.equal(payload.sub, `spiffe://${server.trustDomain}/e2e/app`)
  })

  it('the agent keeps serving while the server is down, and catches up when it is back', async () => {
    await server.close()
    // A fresh client while the control plane is gone is still served from the cache.
    const offline = createWorkloadApiClient(socket)
    const seen = await new Promise<X509SvidResponseMessage>((resolve, reject) => {
      const cancel = offline.watchX509Svids((m) => {
        cancel()
        resolve(m)
      }, reject)
    })
    offline.close()
    assert.ok(seen.svids.some((s) => s.spiffe_id.endsWith('/e2e/app')))
    await start()
    // A change made after the restart reaches the agent by itself.
    const second = `spiffe://${server.trustDomain}/e2e/second`
    await api('POST', '/v1/entries', {
      spiffeId: second,
      parentId: agentId,
      selectors: [`unix:gid:${process.getgid!()}`],
      owner: 'team-platform',
    })
    await until(
      'the entry made after the restart',
      () => latest.msg?.svids.some((s) => s.spiffe_id === second) ?? false,
      60_000,
    )
  })

  it('a revoked SPIFFE ID stops being served within 5 seconds', async () => {
    const revoked = `spiffe://${server.trustDomain}/e2e/second`
    const t0 = Date.now()
    await api('POST', '/v1/revocations', { targetType: 'spiffe_id', value: revoked, reason: 'e2e' })
    await until(
      'the revocation to reach the workload',
      () => !(latest.msg?.svids.some((s) => s.spiffe_id === revoked) ?? true),
      5_000,
    )
    assert.ok(Date.now() - t0 <= 5_000)
    assert.ok(
      latest.msg!.svids.some((s) => s.spiffe_id.endsWith('/e2e/app')),
      'the other SVID stays',
    )
  })
})
