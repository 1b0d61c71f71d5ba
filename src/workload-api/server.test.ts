import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto'
import { linkSync, copyFileSync, realpathSync } from 'node:fs'
import { stat, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import { decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose'
import { isTesseraError } from '../errors.js'
import {
  createWorkloadClient,
  headerMetadata,
  startTestAgent,
  type TestAgent,
} from '../agent/testing/harness.js'
import { removeStaleSocket } from './server.js'

const run = promisify(execFile)

type Msg = Record<string, unknown>

/** Splits concatenated DER certificates (the proto's `bytes` encoding) into single certificates. */
export function splitDer(buf: Buffer): Buffer[] {
  const out: Buffer[] = []
  let off = 0
  while (off < buf.length) {
    if (buf[off] !== 0x30) throw new Error('not DER')
    let len = buf[off + 1]!
    let hdr = 2
    if (len & 0x80) {
      const n = len & 0x7f
      len = 0
      for (let i = 0; i < n; i++) len = (len << 8) | buf[off + 2 + i]!
      hdr = 2 + n
    }
    out.push(buf.subarray(off, off + hdr + len))
    off += hdr + len
  }
  return out
}

function pem(der: Buffer): string {
  return new X509Certificate(der).toString()
}

function firstMessage(
  client: Record<string, unknown>,
  method: string,
  md: grpc.Metadata,
): Promise<{ msg?: Msg; err?: grpc.ServiceError; call: grpc.ClientReadableStream<Msg> }> {
  const call = (client[method] as (req: Msg, md: grpc.Metadata) => grpc.ClientReadableStream<Msg>)(
    {},
    md,
  )
  return new Promise((resolve) => {
    call.once('data', (msg: Msg) => resolve({ msg, call }))
    call.once('error', (err: grpc.ServiceError) => resolve({ err, call }))
  })
}

function unary(
  client: Record<string, unknown>,
  method: string,
  req: Msg,
  md: grpc.Metadata,
): Promise<Msg> {
  return new Promise((resolve, reject) => {
    ;(
      client[method] as (
        req: Msg,
        md: grpc.Metadata,
        cb: (err: grpc.ServiceError | null, res: Msg) => void,
      ) => void
    ).call(client, req, md, (err, res) => (err ? reject(err) : resolve(res)))
  })
}

describe('Workload API over a Unix socket (real gRPC client from the proto)', () => {
  let agent: TestAgent
  let client: grpc.Client & Record<string, unknown>

  before(async () => {
    agent = await startTestAgent()
    agent.port.upsertEntry({
      id: 'e-self',
      spiffeId: 'spiffe://example.org/test/self',
      selectors: [
        { type: 'unix', value: agent.selfSelectors.uid },
        { type: 'unix', value: agent.selfSelectors.path },
      ],
      hint: 'self',
    })
    client = createWorkloadClient(agent.socketPath)
  })
  after(async () => {
    client.close()
    await agent.close()
  })

  it('creates the socket with mode 0666', async () => {
    const st = await stat(agent.socketPath)
    assert.ok(st.isSocket())
    assert.equal(st.mode & 0o777, 0o666)
  })

  it('FetchX509SVID streams a real X509-SVID whose key matches and which verifies', async () => {
    const { msg, err, call } = await firstMessage(client, 'FetchX509SVID', headerMetadata())
    call.cancel()
    assert.equal(err, undefined)
    const svids = msg!.svids as Msg[]
    assert.equal(svids.length, 1)
    const svid = svids[0]!
    assert.equal(svid.spiffe_id, 'spiffe://example.org/test/self')
    assert.equal(svid.hint, 'self')
    const chain = splitDer(svid.x509_svid as Buffer)
    const leaf = new X509Certificate(chain[0]!)
    assert.equal(leaf.subjectAltName, 'URI:spiffe://example.org/test/self')
    const key = createPrivateKey({
      key: svid.x509_svid_key as Buffer,
      format: 'der',
      type: 'pkcs8',
    })
    assert.ok(
      createPublicKey(key)
        .export({ type: 'spki', format: 'der' })
        .equals(leaf.publicKey.export({ type: 'spki', format: 'der' })),
    )
    const roots = splitDer(svid.bundle as Buffer)
    assert.ok(leaf.verify(new X509Certificate(roots[0]!).publicKey))

    // openssl verifies the chain against the bundle written to PEM, and shows the leaf profile.
    const caFile = join(agent.dir, 'bundle.pem')
    const leafFile = join(agent.dir, 'svid.pem')
    await writeFile(caFile, roots.map(pem).join(''))
    await writeFile(leafFile, chain.map(pem).join(''))
    const v = await run('openssl', ['verify', '-CAfile', caFile, leafFile])
    assert.match(v.stdout, /svid\.pem: OK/)
    const text = (await run('openssl', ['x509', '-in', leafFile, '-noout', '-text'])).stdout
    assert.match(text, /URI:spiffe:\/\/example\.org\/test\/self/)
    assert.match(text, /CA:FALSE/)
    assert.match(text, /Key Usage: critical\s+Digital Signature/)
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/)
  })

  it('answers INVALID_ARGUMENT without the security header, on streams and unary calls', async () => {
    const { err, call } = await firstMessage(client, 'FetchX509SVID', new grpc.Metadata())
    call.cancel()
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT)
    assert.match(err!.details, /security header/)
    const wrong = new grpc.Metadata()
    wrong.set('workload.spiffe.io', 'yes')
    const r2 = await firstMessage(client, 'FetchX509Bundles', wrong)
    assert.equal(r2.err?.code, grpc.status.INVALID_ARGUMENT)
    await assert.rejects(
      unary(client, 'FetchJWTSVID', { audience: ['a'] }, new grpc.Metadata()),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
    )
  })

  it('FetchX509Bundles and FetchJWTBundles key bundles by spiffe://<td>', async () => {
    const x = await firstMessage(client, 'FetchX509Bundles', headerMetadata())
    x.call.cancel()
    const bundles = x.msg!.bundles as Record<string, Buffer>
    assert.deepEqual(Object.keys(bundles), ['spiffe://example.org'])
    assert.ok(bundles['spiffe://example.org']!.equals(Buffer.concat(agent.port.ca.rootDer())))
    const j = await firstMessage(client, 'FetchJWTBundles', headerMetadata())
    j.call.cancel()
    const jwks = JSON.parse(
      (j.msg!.bundles as Record<string, Buffer>)['spiffe://example.org']!.toString(),
    ) as { keys: Record<string, unknown>[] }
    assert.equal(jwks.keys.length, 1)
    assert.equal(jwks.keys[0]!.use, 'jwt-svid')
    assert.equal(typeof jwks.keys[0]!.kid, 'string')
  })

  it('FetchJWTSVID mints a JWT-SVID that jose verifies against the JWT bundle', async () => {
    const res = await unary(
      client,
      'FetchJWTSVID',
      { audience: ['https://api.example'] },
      headerMetadata(),
    )
    const svids = res.svids as Msg[]
    assert.equal(svids.length, 1)
    assert.equal(svids[0]!.spiffe_id, 'spiffe://example.org/test/self')
    const j = await firstMessage(client, 'FetchJWTBundles', headerMetadata())
    j.call.cancel()
    const jwks = JSON.parse(
      (j.msg!.bundles as Record<string, Buffer>)['spiffe://example.org']!.toString(),
    ) as { keys: (JWK & { kid: string })[] }
    // jose's JWKS helpers only take `use: "sig"` keys, SPIFFE bundles say `use: "jwt-svid"`: pick by kid.
    const { kid } = decodeProtectedHeader(svids[0]!.svid as string)
    const jwk = jwks.keys.find((k) => k.kid === kid)!
    assert.equal(jwk.use, 'jwt-svid')
    const { payload } = await jwtVerify(svids[0]!.svid as string, await importJWK(jwk, 'ES256'), {
      audience: 'https://api.example',
    })
    assert.equal(payload.sub, 'spiffe://example.org/test/self')

    // A second fetch reuses the cached token (minted once per audience until half-life).
    const before = agent.port.jwtMints
    const again = await unary(
      client,
      'FetchJWTSVID',
      { audience: ['https://api.example'] },
      headerMetadata(),
    )
    assert.equal((again.svids as Msg[])[0]!.svid, svids[0]!.svid)
    assert.equal(agent.port.jwtMints, before)

    // ValidateJWTSVID accepts it for its audience and rejects another audience.
    const v = await unary(
      client,
      'ValidateJWTSVID',
      { audience: 'https://api.example', svid: svids[0]!.svid },
      headerMetadata(),
    )
    assert.equal(v.spiffe_id, 'spiffe://example.org/test/self')
    const claims = v.claims as { fields: Record<string, { stringValue?: string }> }
    assert.equal(claims.fields.sub!.stringValue, 'spiffe://example.org/test/self')
    await assert.rejects(
      unary(
        client,
        'ValidateJWTSVID',
        { audience: 'https://other', svid: svids[0]!.svid },
        headerMetadata(),
      ),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
    )
    await assert.rejects(
      unary(client, 'FetchJWTSVID', { audience: [] }, headerMetadata()),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
    )
    await assert.rejects(
      unary(client, 'FetchJWTSVID', { audience: ['a'], spiffe_id: 'nope' }, headerMetadata()),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
    )
  })

  it('answers UNIMPLEMENTED for the WIT-SVID calls', async () => {
    const { err } = await firstMessage(client, 'FetchWITSVID', headerMetadata())
    assert.equal(err?.code, grpc.status.UNIMPLEMENTED)
    const b = await firstMessage(client, 'FetchWITBundles', headerMetadata())
    assert.equal(b.err?.code, grpc.status.UNIMPLEMENTED)
  })

  it('pushes the full new state on the open stream when an entry is added', async () => {
    const call = (
      client.FetchX509SVID as (req: Msg, md: grpc.Metadata) => grpc.ClientReadableStream<Msg>
    )({}, headerMetadata())
    const msgs: Msg[] = []
    const second = new Promise<void>((resolve, reject) => {
      call.on('data', (m: Msg) => {
        msgs.push(m)
        if (msgs.length === 1) {
          agent.port.upsertEntry({
            id: 'e-self-2',
            spiffeId: 'spiffe://example.org/test/self-extra',
            selectors: [{ type: 'unix', value: agent.selfSelectors.uid }],
          })
        }
        if (msgs.length === 2) resolve()
      })
      call.on('error', reject)
    })
    await second
    call.cancel()
    assert.equal((msgs[0]!.svids as Msg[]).length, 1)
    const ids = (msgs[1]!.svids as Msg[]).map((s) => s.spiffe_id).sort()
    assert.deepEqual(ids, [
      'spiffe://example.org/test/self',
      'spiffe://example.org/test/self-extra',
    ])
    agent.port.deleteEntry('e-self-2')
  })

  it('answers PERMISSION_DENIED to another process that matches no entry, and serves it once one does', async () => {
    // The child runs Node from a hard link (or copy) at another path, so `unix:path` differs.
    const exe = join(agent.dir, 'other-node')
    try {
      linkSync(realpathSync(process.execPath), exe)
    } catch {
      copyFileSync(realpathSync(process.execPath), exe)
    }
    const script = join(agent.dir, 'client.mjs')
    const grpcUrl = import.meta.resolve('@grpc/grpc-js')
    const loaderUrl = import.meta.resolve('@grpc/proto-loader')
    const protoPath = fileURLToPath(new URL('./workload.proto', import.meta.url))
    await writeFile(
      script,
      `import * as grpc from ${JSON.stringify(grpcUrl)}
import * as loader from ${JSON.stringify(loaderUrl)}
const def = grpc.loadPackageDefinition(loader.loadSync(${JSON.stringify(protoPath)}, { keepCase: true, defaults: true }))
const client = new def.SpiffeWorkloadAPI(${JSON.stringify('unix://' + agent.socketPath)}, grpc.credentials.createInsecure())
const md = new grpc.Metadata(); md.set('workload.spiffe.io', 'true')
const call = client.FetchX509SVID({}, md)
call.on('data', (m) => { console.log(JSON.stringify({ ok: m.svids.map((s) => s.spiffe_id) })); call.cancel(); client.close() })
call.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) console.log(JSON.stringify({ code: e.code, details: e.details })); client.close() })
`,
    )
    const denied = await run(exe, [script])
    const out = JSON.parse(denied.stdout.trim()) as { code?: number; details?: string }
    assert.equal(out.code, grpc.status.PERMISSION_DENIED)
    assert.equal(out.details, 'no identity issued')

    agent.port.upsertEntry({
      id: 'e-child',
      spiffeId: 'spiffe://example.org/test/child',
      selectors: [
        { type: 'unix', value: agent.selfSelectors.uid },
        { type: 'unix', value: `path:${exe}` },
      ],
    })
    const served = await run(exe, [script])
    assert.deepEqual(JSON.parse(served.stdout.trim()), { ok: ['spiffe://example.org/test/child'] })
  })
})

describe('socket housekeeping', () => {
  it('removes a stale socket file and refuses a live one or a non-socket', async () => {
    const agent = await startTestAgent()
    try {
      await assert.rejects(removeStaleSocket(agent.socketPath), (e) =>
        isTesseraError(e, 'TSR_AGENT_SOCKET'),
      )
      const plain = join(agent.dir, 'plain')
      await writeFile(plain, 'x')
      await assert.rejects(removeStaleSocket(plain), (e) => isTesseraError(e, 'TSR_AGENT_SOCKET'))
      // A socket whose server died (bound, never closed cleanly) is removed.
      const stale = join(agent.dir, 'stale.sock')
      const srv = net.createServer()
      await new Promise<void>((r) => srv.listen(stale, r))
      const handle = (srv as unknown as { _handle: { close(): void } })._handle
      handle.close() // closes the fd without unlinking the path, like a killed process
      await removeStaleSocket(stale)
      await assert.rejects(stat(stale), { code: 'ENOENT' })
    } finally {
      await agent.close()
    }
  })
})
