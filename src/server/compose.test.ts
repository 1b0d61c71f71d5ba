import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { freshSchemaName } from '../../test/support/stores.js'
import { startServer, type ServerOptions } from './compose.js'

function logCapture() {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString())
      callback()
    },
  })
  return { stream, text: () => chunks.join('') }
}

interface Target {
  name: string
  /** The same store location for every start, so the second start sees the first's token. */
  options: () => ServerOptions
  cleanup: () => void
}

function targets(): Target[] {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-server-'))
  const list: Target[] = [
    {
      name: 'pglite',
      options: () => ({ dataDir: join(dir, 'data') }),
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    },
  ]
  const url = process.env.TESSERA_TEST_DATABASE_URL
  if (url) {
    const schema = freshSchemaName()
    // PostgreSQL needs a key-encryption key for the CA keys; the same one on every start.
    const kek = randomBytes(32).toString('base64')
    list.push({
      name: 'postgres',
      options: () => ({ databaseUrl: url, databaseSchema: schema, ca: { kek } }),
      cleanup: () => {},
    })
  }
  return list
}

for (const target of targets()) {
  describe(`${target.name}: startServer`, () => {
    after(() => target.cleanup())

    it('creates the admin token on the first start only, and serves HTTP end to end', async () => {
      const log = logCapture()
      const first = await startServer({ ...target.options(), port: 0, log: log.stream })
      let adminToken: string
      try {
        assert.match(first.url, /^http:\/\/127\.0\.0\.1:\d+$/)
        assert.ok(first.adminToken, 'the first start returns the admin token')
        adminToken = first.adminToken
        assert.match(adminToken, /^tsr_[0-9a-f]{16}_/)

        const health = await fetch(`${first.url}/healthz`, {
          headers: { 'x-request-id': 'e2e-1' },
        })
        assert.equal(health.status, 200)
        assert.equal(health.headers.get('x-request-id'), 'e2e-1')
        assert.match(String(health.headers.get('content-type')), /^application\/json/)

        const denied = await fetch(`${first.url}/v1/stats`)
        assert.equal(denied.status, 401)
        assert.match(String(denied.headers.get('content-type')), /^application\/problem\+json/)
        assert.match(String(denied.headers.get('www-authenticate')), /^Bearer/)
        assert.ok(denied.headers.get('x-request-id'))

        const stats = await fetch(`${first.url}/v1/stats`, {
          headers: { authorization: `Bearer ${adminToken}` },
        })
        assert.equal(stats.status, 200)
        assert.equal(typeof ((await stats.json()) as { identity: unknown }).identity, 'number')
      } finally {
        await first.close()
      }
      assert.equal(log.text().includes(adminToken), false, 'the admin token must never be logged')
      assert.match(log.text(), /tessera server listening/)

      const second = await startServer({ ...target.options(), port: 0, log: logCapture().stream })
      try {
        assert.equal(second.adminToken, undefined, 'no new admin token on a later start')
        const stats = await fetch(`${second.url}/v1/stats`, {
          headers: { authorization: `Bearer ${adminToken}` },
        })
        assert.equal(stats.status, 200, 'the first admin token still works')
      } finally {
        await second.close()
      }
    })

    it('refuses a port in use with a clear configuration error, and releases the store', async () => {
      const first = await startServer({ ...target.options(), port: 0, log: logCapture().stream })
      try {
        const port = Number(new URL(first.url).port)
        await first.close()
        const blocker = await startServer({ ...target.options(), port, log: logCapture().stream })
        try {
          // The second server fails at listen, after opening the store: it must close it again.
          const otherDir =
            target.name === 'pglite'
              ? { dataDir: mkdtempSync(join(tmpdir(), 'tsr-port-')) }
              : target.options()
          await assert.rejects(
            startServer({ ...otherDir, port, log: logCapture().stream }),
            (err: Error & { code?: string }) =>
              err.code === 'TSR_CONFIG' && /in use .*--port/.test(err.message),
          )
        } finally {
          await blocker.close()
        }
      } finally {
        await first.close()
      }
    })

    it('stops listening and closes the store on close, idempotently', async () => {
      const server = await startServer({ ...target.options(), port: 0, log: logCapture().stream })
      const ready = await fetch(`${server.url}/readyz`)
      assert.equal(ready.status, 200)
      await server.close()
      await assert.rejects(fetch(`${server.url}/healthz`))
      await assert.rejects(server.store.ping())
      await server.close()
    })
  })
}
