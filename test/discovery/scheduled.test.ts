import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { startServer } from '../../src/server/compose.js'

const examples = new URL('../../examples/', import.meta.url).pathname

describe('server: scheduled discovery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sched-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('runs sources with an interval after start, logs their stats, and stops with the server', async () => {
    writeFileSync(
      join(dir, 'sources.json'),
      JSON.stringify({
        sources: [
          {
            name: 'aws:prod',
            type: 'aws',
            interval: '1h',
            options: {
              authorizationDetails: join(examples, 'aws/authorization-details.json'),
              credentialReport: join(examples, 'aws/credential-report.csv'),
            },
          },
          // No interval: only `tessera discover run` runs it.
          {
            name: 'aws:manual',
            type: 'aws',
            options: { credentialReport: join(examples, 'aws/credential-report.csv') },
          },
        ],
      }),
    )
    const lines: string[] = []
    const log = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(...chunk.toString().split('\n').filter(Boolean))
        cb()
      },
    })
    const server = await startServer({
      dataDir: join(dir, 'data'),
      port: 0,
      sourcesFile: join(dir, 'sources.json'),
      log,
    })
    try {
      const deadline = Date.now() + 30_000
      let finished:
        { discovery: { source: string; status: string; seen: number; new: number } } | undefined
      while (!finished && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100))
        const line = lines.find((l) => l.includes('"discovery run finished"'))
        if (line) finished = JSON.parse(line) as typeof finished
      }
      assert.ok(finished, `no discovery run logged:\n${lines.join('\n')}`)
      assert.equal(finished.discovery.source, 'aws:prod')
      assert.equal(finished.discovery.status, 'succeeded')
      assert.ok(finished.discovery.seen > 40)
      assert.equal(finished.discovery.new, finished.discovery.seen)
      assert.ok(!lines.some((l) => l.includes('aws:manual') && l.includes('run finished')))
    } finally {
      await server.close()
    }
  })

  it('refuses to start on a bad sources file, naming the problem', async () => {
    writeFileSync(join(dir, 'bad.yaml'), 'sources:\n  - name: k\n    type: aws\n')
    await assert.rejects(
      startServer({
        dataDir: join(dir, 'data2'),
        port: 0,
        sourcesFile: join(dir, 'bad.yaml'),
        log: new Writable({ write: (_c, _e, cb) => cb() }),
      }),
      (err: Error & { code?: string }) =>
        err.code === 'TSR_CONFIG' &&
        /k: options\.authorizationDetails or credentialReport/.test(err.message),
    )
  })
})
