import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { createClient } from 'redis'
import { startServer, type RunningServer } from '../../src/server/compose.js'
import { redisAdminUrl, redisFixture } from './support.js'

/**
 * Delivery with real processes: a control plane on the embedded store, `tessera agent` attested
 * with a join token, `tessera secret fetch` keeping a file current, and consumers of a Redis ACL
 * user that read the file while the password rotates.
 */
describe('managed secret delivery end to end: server, agent, secret fetch, Redis consumers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-rotation-e2e-'))
  const socket = join(dir, 'agent.sock')
  const outFile = join(dir, 'redis-password')
  let server: RunningServer
  let admin = ''
  let agent: ChildProcess
  let agentId = ''
  let fetcher: ChildProcess | undefined
  let fx: Awaited<ReturnType<typeof redisFixture>>
  let logText = ''
  const responses: string[] = []
  const log = new Writable({
    write: (c: Buffer, _e, done) => {
      logText += c.toString()
      done()
    },
  })
  const cli = (args: string[]) =>
    spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  const api = async (method: string, path: string, body?: unknown, ok = true) => {
    const res = await fetch(server.url + path, {
      method,
      headers: {
        authorization: `Bearer ${admin}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    const text = await res.text()
    responses.push(text)
    if (ok) assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`)
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }
  const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 20_000) => {
    const deadline = Date.now() + ms
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const exitOf = (p: ChildProcess) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      let out = ''
      let err = ''
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()))
      p.stderr!.on('data', (d: Buffer) => (err += d.toString()))
      p.once('exit', (code) => resolve({ code, out, err }))
    })

  before(async () => {
    fx = await redisFixture()
    server = await startServer({
      dataDir: join(dir, 'data'),
      port: 0,
      log,
      rotation: { tickMs: 200 },
    })
    admin = server.adminToken!
    const { body } = await api('POST', '/v1/join-tokens', { ttlSeconds: 600 })
    agent = cli([
      'agent',
      '--server',
      server.url,
      '--join-token',
      String(body.token),
      '--socket',
      socket,
      '--secret-poll-ms',
      '200',
      '--json',
    ])
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
  })

  after(async () => {
    fetcher?.kill('SIGTERM')
    agent?.kill('SIGTERM')
    await server?.close()
    await fx?.cleanup()
  })

  it('delivers only to entitled workloads, rewrites the file on rotation, and no consumer fails', async () => {
    const app = `spiffe://${server.trustDomain}/rotation/app`
    await api('POST', '/v1/entries', {
      spiffeId: app,
      parentId: agentId,
      selectors: [`unix:uid:${process.getuid!()}`],
      owner: 'team-platform',
    })
    const managed = await api('POST', '/v1/secrets', {
      name: 'cache-password',
      rotator: 'redis',
      config: { adminUrl: redisAdminUrl, username: fx.username },
      consumers: [app],
      periodSeconds: 86_400,
      graceSeconds: 3,
      value: fx.initial,
    })
    assert.equal(managed.status, 201)
    assert.equal(managed.body.version, 0)
    // A secret this workload is not a consumer of.
    await api('POST', '/v1/secrets', {
      name: 'other-password',
      rotator: 'redis',
      config: { adminUrl: redisAdminUrl, username: fx.username },
      consumers: [`spiffe://${server.trustDomain}/rotation/someone-else`],
      periodSeconds: 86_400,
      graceSeconds: 3,
      value: fx.initial,
    })

    // The agent learns of the entry asynchronously: ask until it serves it.
    let first: Awaited<ReturnType<typeof exitOf>> | undefined
    await until('the first delivery', async () => {
      first = await exitOf(
        cli(['secret', 'fetch', 'cache-password', '--socket', socket, '--out', outFile, '--once']),
      )
      return first.code === 0
    })
    assert.equal(readFileSync(outFile, 'utf8'), fx.initial)
    assert.equal(statSync(outFile).mode & 0o777, 0o600)

    const denied = await exitOf(
      cli([
        'secret',
        'fetch',
        'other-password',
        '--socket',
        socket,
        '--out',
        join(dir, 'nope'),
        '--once',
        '--json',
      ]),
    )
    assert.equal(denied.code, 1, denied.err)
    assert.match(denied.err, /TSR_SECRET_DENIED/)

    // The long-running fetcher and the consumers.
    fetcher = cli(['secret', 'fetch', 'cache-password', '--socket', socket, '--out', outFile])
    const fetcherDone = exitOf(fetcher)
    // A client that authenticated with the old password before the rotation and stays connected.
    const holder = createClient({
      url: redisAdminUrl,
      username: fx.username,
      password: fx.initial,
      socket: { reconnectStrategy: false },
    })
    holder.on('error', () => {})
    await holder.connect()
    // Readers that open a new connection each time with whatever the file holds.
    let ok = 0
    const failures: string[] = []
    let stop = false
    const readers = Array.from({ length: 3 }, async () => {
      while (!stop) {
        const password = readFileSync(outFile, 'utf8')
        const c = createClient({
          url: redisAdminUrl,
          username: fx.username,
          password,
          socket: { reconnectStrategy: false },
        })
        c.on('error', () => {})
        try {
          await c.connect()
          await c.set(`${fx.username}:n`, String(ok))
          ok++
        } catch (err) {
          failures.push((err as Error).message)
        } finally {
          await c.close().catch(() => {})
        }
      }
    })
    await until('readers running', () => ok > 10)

    const rotation = await api('POST', '/v1/secrets/cache-password/rotate')
    assert.equal(rotation.body.state, 'grace')
    await until(
      'the file to hold the new value',
      () => readFileSync(outFile, 'utf8') !== fx.initial,
    )
    const next = readFileSync(outFile, 'utf8')
    assert.equal(statSync(outFile).mode & 0o777, 0o600)
    // The scheduler revokes the old password once the 3 s grace is over.
    await until('the old password to be revoked', async () => !(await fx.works(fx.initial)), 15_000)
    const afterRevoke = ok
    await until('readers after the revocation', () => ok > afterRevoke + 10)
    stop = true
    await Promise.all(readers)
    assert.deepEqual(failures, [])
    assert.equal(await fx.works(next), true)
    assert.equal(await fx.passwordCount(), 1)
    assert.equal(await holder.set(`${fx.username}:held`, 'ok'), 'OK')
    await holder.close()

    const shown = await api('GET', '/v1/secrets/cache-password')
    assert.equal(shown.body.version, 1)
    const history = shown.body.rotations as { state: string; steps: { state: string }[] }[]
    assert.equal(history[0]?.state, 'done')
    // The inventory holds it as a managed credential, with its rotation facts.
    const credential = await server.store.db
      .selectFrom('credential')
      .selectAll()
      .where('ref', '=', 'managed-secret:cache-password')
      .where('valid_to', 'is', null)
      .executeTakeFirstOrThrow()
    assert.equal(credential.state, 'managed')
    assert.ok(credential.last_rotated_at)
    assert.equal(credential.fingerprint, shown.body.fingerprint)
    assert.equal(credential.attributes.version, 1)
    assert.deepEqual(credential.attributes.consumers, [app])
    assert.equal(credential.attributes.nextRotationAt, shown.body.nextRotationAt)

    fetcher.kill('SIGTERM')
    const done = await fetcherDone
    assert.match(done.err, /"event":"secret.written".*"version":1/)
    // Values never reach the API responses nor the server log.
    const everything = responses.join('\n') + logText
    for (const v of [fx.initial, next]) assert.equal(everything.includes(v), false)
    // Every rotation step is an event of the server's audit log (and never carries a value).
    const steps = await api('GET', '/v1/audit/events?type=rotation.step&limit=100')
    const stepEvents = JSON.stringify(steps.body)
    assert.match(stepEvents, /rotation\.step/)
    for (const v of [fx.initial, next]) assert.equal(stepEvents.includes(v), false)
  })
})
