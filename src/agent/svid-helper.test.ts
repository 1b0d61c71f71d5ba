import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { runCli } from '../cli/program.js'
import { parseEndpointSocket } from '../workload-api/client.js'
import { runSvidHelper, splitDerCertificates } from './svid-helper.js'
import { startTestAgent } from './testing/harness.js'

const run = promisify(execFile)

class Capture extends Writable {
  text = ''
  override _write(c: Buffer | string, _e: BufferEncoding, done: () => void) {
    this.text += c.toString()
    done()
  }
}

async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const t0 = Date.now()
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('tessera svid fetch', () => {
  it('writes svid.pem, svid_key.pem (0600) and bundle.pem that openssl verifies (SPIFFE_ENDPOINT_SOCKET)', async () => {
    const agent = await startTestAgent()
    try {
      agent.port.upsertEntry({
        id: 'e',
        spiffeId: 'spiffe://example.org/helper',
        selectors: [{ type: 'unix', value: agent.selfSelectors.uid }],
      })
      const out = join(agent.dir, 'out')
      const stdout = new Capture()
      const stderr = new Capture()
      const code = await runCli(['--json', 'svid', 'fetch', '--out', out, '--once'], {
        stdout,
        stderr,
        env: { SPIFFE_ENDPOINT_SOCKET: `unix://${agent.socketPath}` },
      })
      assert.equal(code, 0, stderr.text)
      const line = JSON.parse(stdout.text.trim().split('\n')[0]!) as Record<string, unknown>
      assert.equal(line.event, 'written')
      assert.equal(line.spiffeId, 'spiffe://example.org/helper')
      assert.equal((await stat(join(out, 'svid_key.pem'))).mode & 0o777, 0o600)
      const v = await run('openssl', [
        'verify',
        '-CAfile',
        join(out, 'bundle.pem'),
        join(out, 'svid.pem'),
      ])
      assert.match(v.stdout, /OK/)
      // The key matches the certificate.
      const mod = await run('openssl', ['pkey', '-in', join(out, 'svid_key.pem'), '-pubout'])
      const cert = new X509Certificate(await readFile(join(out, 'svid.pem')))
      assert.equal(mod.stdout, cert.publicKey.export({ type: 'spki', format: 'pem' }))

      const noSocket = await runCli(['svid', 'fetch', '--out', out, '--once'], {
        stdout: new Capture(),
        stderr,
        env: {},
      })
      assert.equal(noSocket, 2)
    } finally {
      await agent.close()
    }
  })

  it('keeps the files fresh and signals the command on rotation', async () => {
    const agent = await startTestAgent()
    const abort = new AbortController()
    try {
      agent.port.upsertEntry({
        id: 'e',
        spiffeId: 'spiffe://example.org/helper',
        selectors: [{ type: 'unix', value: agent.selfSelectors.uid }],
      })
      const out = join(agent.dir, 'out')
      const events: Record<string, unknown>[] = []
      const hups = join(agent.dir, 'hups')
      const done = runSvidHelper({
        socketPath: agent.socketPath,
        outDir: out,
        cmd: `trap 'echo hup >> ${hups}' HUP; while :; do sleep 0.05; done`,
        signal: 'SIGHUP',
        abort: abort.signal,
        onEvent: (e) => events.push(e),
      })
      const first = await waitFor(async () => events.find((e) => e.event === 'started'))
      assert.ok(first)
      const serial1 = events.find((e) => e.event === 'written')!.serial as string
      await new Promise((r) => setTimeout(r, 200)) // let the shell install its trap
      agent.port.revoke({ targetType: 'serial', value: serial1 }) // forces a new SVID
      await waitFor(async () => events.find((e) => e.event === 'signalled'))
      const pem = await readFile(join(out, 'svid.pem'), 'utf8')
      assert.notEqual(new X509Certificate(pem).serialNumber.toLowerCase(), serial1)
      const log = await waitFor(async () => {
        const t = await readFile(hups, 'utf8')
        return t.includes('hup') ? t : undefined
      })
      assert.match(log, /hup/)
      abort.abort()
      assert.equal(await done, 0)
    } finally {
      abort.abort()
      await agent.close()
    }
  })

  it('parses SPIFFE_ENDPOINT_SOCKET forms and DER chains safely (fuzz)', () => {
    assert.equal(parseEndpointSocket('unix:///run/agent.sock'), '/run/agent.sock')
    assert.equal(parseEndpointSocket('unix:/run/agent.sock'), '/run/agent.sock')
    assert.equal(parseEndpointSocket('/run/agent.sock'), '/run/agent.sock')
    assert.throws(() => parseEndpointSocket('tcp://127.0.0.1:8081'), { code: 'TSR_VALIDATION' })
    assert.throws(() => parseEndpointSocket('relative.sock'), { code: 'TSR_VALIDATION' })
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          const parts = splitDerCertificates(Buffer.from(bytes))
          assert.equal(
            parts.reduce((a, p) => a + p.length, 0),
            bytes.length,
          )
        } catch (err) {
          assert.ok(err instanceof Error)
        }
      }),
      { numRuns: 1000 },
    )
  })
})
