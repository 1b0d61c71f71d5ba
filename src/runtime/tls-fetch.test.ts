import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createTlsFetch } from './tls-fetch.js'

describe('createTlsFetch (a private CA for the control plane)', () => {
  let dir: string
  let server: Server
  let url: string
  let ca: Buffer
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsr-tlsfetch-'))
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=tessera.internal',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'ca.pem'),
      ],
      { stdio: 'ignore' },
    )
    ca = readFileSync(join(dir, 'ca.pem'))
    server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: ca }, (req, res) => {
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.write('{"n":1}\n')
        setTimeout(() => res.end('{"n":2}\n'), 50)
        return
      }
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        res.writeHead(req.method === 'DELETE' ? 204 : 201, {
          'x-seen': req.headers['x-proof'] ?? '',
        })
        res.end(
          req.method === 'DELETE'
            ? undefined
            : JSON.stringify({ method: req.method, body: Buffer.concat(chunks).toString() }),
        )
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
    rmSync(dir, { recursive: true, force: true })
  })

  it('trusts the given CA, sends method, headers and body, and reads status, headers and JSON', async () => {
    const f = createTlsFetch({ ca })
    const res = await f(`${url}/x`, {
      method: 'POST',
      headers: { 'x-proof': 'p1' },
      body: '{"a":1}',
    })
    assert.equal(res.status, 201)
    assert.equal(res.headers.get('x-seen'), 'p1')
    assert.deepEqual(await res.json(), { method: 'POST', body: '{"a":1}' })
    const gone = await f(`${url}/x`, { method: 'DELETE' })
    assert.equal(gone.status, 204)
  })

  it('streams a body as it arrives', async () => {
    const res = await createTlsFetch({ ca })(`${url}/stream`)
    const lines: string[] = []
    for await (const chunk of res.body!) lines.push(Buffer.from(chunk).toString())
    assert.equal(lines.join(''), '{"n":1}\n{"n":2}\n')
  })

  it('refuses the server without its CA (the global fetch does too)', async () => {
    const other = execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=other',
        '-keyout',
        '/dev/null',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    )
    await assert.rejects(
      createTlsFetch({ ca: other })(`${url}/x`),
      /self.signed|unable to verify|SELF_SIGNED/i,
    )
    await assert.rejects(fetch(`${url}/x`))
  })

  it('honours an abort signal', async () => {
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(createTlsFetch({ ca })(`${url}/stream`, { signal: ac.signal }), /abort/i)
  })
})
