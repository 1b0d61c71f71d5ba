import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, linkSync, realpathSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createFakeControlPort } from './testing/fake-control-port.js'
import { startTestAgent } from './testing/harness.js'

/**
 * A workload process: fetches its X509-SVID from the agent over the Workload API (keeping the stream
 * open for rotations) and either serves or dials mutual TLS 1.3, checking the peer's SPIFFE ID
 * (URI SAN) against the bundle — SPIFFE authentication, no host names.
 */
const peerScript = (grpcUrl: string, loaderUrl: string, protoPath: string): string => `
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import * as grpc from ${JSON.stringify(grpcUrl)}
import * as loader from ${JSON.stringify(loaderUrl)}
const [role, socketPath, expectPeer] = process.argv.slice(2)
const def = grpc.loadPackageDefinition(loader.loadSync(${JSON.stringify(protoPath)}, { keepCase: true, defaults: true }))
const client = new def.SpiffeWorkloadAPI('unix://' + socketPath, grpc.credentials.createInsecure())
const md = new grpc.Metadata(); md.set('workload.spiffe.io', 'true')
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n')
const splitDer = (b) => { const out = []; let o = 0; while (o < b.length) { let len = b[o + 1], h = 2; if (len & 0x80) { const n = len & 0x7f; len = 0; for (let i = 0; i < n; i++) len = len * 256 + b[o + 2 + i]; h = 2 + n } out.push(b.subarray(o, o + h + len)); o += h + len } return out }
const pem = (der) => new X509Certificate(der).toString()
let ctx, server, keep
const checkPeer = (cert) => cert && cert.subjectaltname === 'URI:' + expectPeer
const call = client.FetchX509SVID({}, md)
call.on('error', (e) => say({ event: 'error', code: e.code, details: e.details }))
call.on('data', (m) => {
  const s = m.svids[0]
  const chain = splitDer(s.x509_svid)
  const opts = {
    cert: chain.map(pem).join(''),
    key: '-----BEGIN PRIVATE KEY-----\\n' + s.x509_svid_key.toString('base64').replace(/(.{64})/g, '$1\\n') + '\\n-----END PRIVATE KEY-----\\n',
    ca: splitDer(s.bundle).map(pem).join(''),
    minVersion: 'TLSv1.3',
  }
  const serial = new X509Certificate(chain[0]).serialNumber
  const first = ctx === undefined
  ctx = opts
  if (role === 'server') {
    if (first) {
      server = tls.createServer({ ...ctx, requestCert: true, rejectUnauthorized: true }, (sock) => {
        const peer = sock.getPeerX509Certificate()
        if (!checkPeer({ subjectaltname: peer && peer.subjectAltName })) { sock.destroy(); return }
        sock.write(JSON.stringify({ serverSaw: peer.subjectAltName, serverSerial: sock.getX509Certificate().serialNumber }) + '\\n')
        sock.on('data', (d) => sock.write(d))
      })
      server.listen(0, '127.0.0.1', () => say({ event: 'listening', port: server.address().port, serial }))
    } else {
      server.setSecureContext({ ...ctx })
      say({ event: 'rotated', serial })
    }
  } else {
    say({ event: first ? 'ready' : 'rotated', serial })
  }
})
if (role === 'client') {
  const rl = (await import('node:readline')).createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const [cmd, arg] = line.split(' ')
    if (cmd === 'connect') {
      const sock = tls.connect({ ...ctx, host: '127.0.0.1', port: Number(arg), servername: undefined,
        checkServerIdentity: (_h, cert) => checkPeer(cert) ? undefined : new Error('unexpected server SPIFFE ID ' + cert.subjectaltname) })
      sock.once('error', (e) => say({ event: 'result', error: e.message }))
      sock.once('data', (d) => {
        const hello = JSON.parse(d.toString())
        say({ event: 'result', protocol: sock.getProtocol(), authorized: sock.authorized,
          serverId: sock.getPeerX509Certificate().subjectAltName, ...hello })
        if (keep === undefined) keep = sock; else sock.end()
      })
    } else if (cmd === 'ping') {
      keep.once('data', (d) => say({ event: 'pong', data: d.toString() }))
      keep.write('ping')
    } else if (cmd === 'exit') { call.cancel(); client.close(); keep && keep.destroy(); process.exit(0) }
  })
}
if (role === 'server') process.stdin.on('data', (d) => { if (String(d).startsWith('exit')) { call.cancel(); client.close(); server && server.close(); process.exit(0) } })
`

class Peer {
  readonly events: Record<string, unknown>[] = []
  private waiters: (() => void)[] = []
  readonly child: ChildProcess
  constructor(child: ChildProcess) {
    this.child = child
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.events.push(JSON.parse(line) as Record<string, unknown>)
      this.waiters.splice(0).forEach((w) => w())
    })
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(d))
  }
  async next(event: string, after = 0, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const t0 = Date.now()
    for (;;) {
      const hit = this.events.slice(after).find((e) => e.event === event)
      if (hit !== undefined) return hit
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(`no ${event} event; got ${JSON.stringify(this.events)}`)
      }
      await new Promise<void>((r) => {
        this.waiters.push(r)
        setTimeout(r, 100)
      })
    }
  }
  send(line: string): void {
    this.child.stdin!.write(line + '\n')
  }
}

describe('mutual TLS between two workloads with their SVIDs', () => {
  it('completes a TLS 1.3 handshake, checks both SPIFFE IDs, and keeps working after rotation', async () => {
    // TTL 10 s without backdating: rotation at 5 s ± 10%.
    const port = await createFakeControlPort({ defaultX509Ttl: 10, backdateSeconds: 0 })
    const agent = await startTestAgent({ port })
    const children: ChildProcess[] = []
    try {
      const node = realpathSync(process.execPath)
      const exe = (name: string): string => {
        const p = join(agent.dir, name)
        try {
          linkSync(node, p)
        } catch {
          copyFileSync(node, p)
        }
        return p
      }
      const serverExe = exe('node-server')
      const clientExe = exe('node-client')
      const serverId = 'spiffe://example.org/tls/server'
      const clientId = 'spiffe://example.org/tls/client'
      const uid = agent.selfSelectors.uid
      port.upsertEntry({
        id: 'srv',
        spiffeId: serverId,
        selectors: [
          { type: 'unix', value: uid },
          { type: 'unix', value: `path:${serverExe}` },
        ],
      })
      port.upsertEntry({
        id: 'cli',
        spiffeId: clientId,
        selectors: [
          { type: 'unix', value: uid },
          { type: 'unix', value: `path:${clientExe}` },
        ],
      })
      const script = join(agent.dir, 'peer.mjs')
      await writeFile(
        script,
        peerScript(
          import.meta.resolve('@grpc/grpc-js'),
          import.meta.resolve('@grpc/proto-loader'),
          fileURLToPath(new URL('../workload-api/workload.proto', import.meta.url)),
        ),
      )
      const srvProc = spawn(serverExe, [script, 'server', agent.socketPath, clientId])
      const cliProc = spawn(clientExe, [script, 'client', agent.socketPath, serverId])
      children.push(srvProc, cliProc)
      const srv = new Peer(srvProc)
      const cli = new Peer(cliProc)
      const listening = await srv.next('listening')
      const ready = await cli.next('ready')

      cli.send(`connect ${String(listening.port)}`)
      const r1 = await cli.next('result')
      assert.equal(r1.error, undefined)
      assert.equal(r1.protocol, 'TLSv1.3')
      assert.equal(r1.authorized, true)
      assert.equal(r1.serverId, `URI:${serverId}`)
      assert.equal(r1.serverSaw, `URI:${clientId}`)

      // Both SVIDs rotate on the open Workload API streams.
      const srvRot = await srv.next('rotated')
      const cliRot = await cli.next('rotated')
      assert.notEqual(srvRot.serial, listening.serial)
      assert.notEqual(cliRot.serial, ready.serial)

      // New connections use the rotated SVIDs; the connection made before rotation still works.
      const before = cli.events.length
      cli.send(`connect ${String(listening.port)}`)
      const r2 = await cli.next('result', before)
      assert.equal(r2.error, undefined)
      assert.equal(r2.protocol, 'TLSv1.3')
      assert.equal(r2.serverSaw, `URI:${clientId}`)
      assert.equal(r2.serverSerial, srvRot.serial)
      cli.send('ping')
      const pong = await cli.next('pong')
      assert.equal(pong.data, 'ping')
      srv.send('exit')
      cli.send('exit')
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill()
      await agent.close()
    }
  })
})
