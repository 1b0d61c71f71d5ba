import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { isTesseraError } from '../errors.js'
import { createWorkloadApiClient } from '../workload-api/client.js'
import { loadPeerCredentials } from './peercred.js'
import { startAgent } from './start-agent.js'
import { createFakeControlPort } from './testing/fake-control-port.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

describe('startAgent', () => {
  it('serves the Workload API, refuses a second agent on the socket, and cleans up on close', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-start-'))
    const socketPath = join(dir, 'api.sock')
    const port = await createFakeControlPort()
    port.upsertEntry({
      id: 'e',
      spiffeId: 'spiffe://example.org/started',
      selectors: [{ type: 'unix', value: `uid:${process.getuid!()}` }],
    })
    const agent = await startAgent({ port, socketPath })
    try {
      const client = createWorkloadApiClient(socketPath)
      const svids = await client.fetchJwtSvid(['aud'])
      assert.equal(svids[0]!.spiffe_id, 'spiffe://example.org/started')
      client.close()
      await assert.rejects(startAgent({ port, socketPath }), (e) =>
        isTesseraError(e, 'TSR_AGENT_SOCKET'),
      )
    } finally {
      await agent.close()
    }
    await assert.rejects(stat(socketPath), { code: 'ENOENT' })
    await rm(dir, { recursive: true, force: true })
  })

  it('fails with TSR_AGENT_NATIVE and a remedy when the addon is missing', () => {
    assert.throws(
      () => loadPeerCredentials('/nonexistent/peercred.node'),
      (e) => isTesseraError(e, 'TSR_AGENT_NATIVE') && /build-native/.test(e.message),
    )
  })

  it('takes over the socket of an agent killed with SIGKILL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-kill-'))
    const socketPath = join(dir, 'api.sock')
    const script = join(dir, 'agent.mts')
    const here = (p: string): string => JSON.stringify(new URL(p, import.meta.url).href)
    await writeFile(
      script,
      `import { startAgent } from ${here('./start-agent.ts')}
import { createFakeControlPort } from ${here('./testing/fake-control-port.ts')}
const port = await createFakeControlPort()
await startAgent({ port, socketPath: ${JSON.stringify(socketPath)} })
process.stdout.write('ready\\n')
setInterval(() => {}, 1000)
`,
    )
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root })
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())
        child.once('exit', (c) => reject(new Error(`agent exited ${c}`)))
      })
      child.kill('SIGKILL')
      await new Promise((r) => child.once('exit', r))
      assert.ok((await stat(socketPath)).isSocket(), 'the killed agent left its socket behind')
      const port = await createFakeControlPort()
      const agent = await startAgent({ port, socketPath })
      await agent.close()
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
    }
  })
})
