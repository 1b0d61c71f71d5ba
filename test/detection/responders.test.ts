import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import {
  createAnomalyDetector,
  createNotifyResponder,
  createResponders,
  createResponseEngine,
  parseDetectionFile,
  parseResponsePolicy,
  type Anomaly,
} from '../../src/detection/index.js'
import { createDenyListMatcher, createRevocationList } from '../../src/lifecycle/revocations.js'
import { createFixedClock, systemClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { addIdentity } from '../observe/construct.js'
import { testBackends } from '../support/stores.js'
import { routine, start, td } from './train.js'

const bot = `${td}/reporting/report-bot-1`

function anomaly(identity = bot, score = 0.95): Anomaly {
  return {
    identity,
    score,
    reasons: [
      {
        feature: 'action',
        weight: 0.75,
        text: 'never called ssh:connect on web-01; peers never do',
      },
    ],
    explanation: 'never called ssh:connect on web-01; peers never do',
    event: {
      identity,
      action: 'ssh:connect',
      resource: 'web-01',
      at: Date.parse('2026-11-23T10:04:01Z'),
    },
    findingKey: `anomalous-behaviour:${identity}:action:ssh:connect web-01`,
  }
}

describe('notify responder', () => {
  let server: Server
  let url: string
  const answers: number[] = []
  const received: unknown[] = []
  before(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        received.push(JSON.parse(body))
        res.statusCode = answers.shift() ?? 200
        res.end()
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  it('retries 5xx with doubling backoff until the webhook accepts', async () => {
    answers.push(503, 502)
    received.length = 0
    const waits: number[] = []
    const n = createNotifyResponder({
      url,
      backoffMs: 100,
      sleep: async (ms) => void waits.push(ms),
    })
    const out = await n.respond(anomaly())
    assert.deepEqual(out, { status: 'done', data: { status: 200, attempts: 3 } })
    assert.deepEqual(waits, [100, 200])
    assert.equal(received.length, 3)
    assert.equal(
      (received[0] as { explanation: string }).explanation,
      'never called ssh:connect on web-01; peers never do',
    )
  })

  it('gives up at once on a 4xx, and after the retries on a dead endpoint', async () => {
    answers.push(404)
    const n = createNotifyResponder({ url, sleep: async () => {} })
    const out = await n.respond(anomaly())
    assert.equal(out.status, 'failed')
    assert.match(out.detail!, /HTTP 404/)
    let calls = 0
    const dead = createNotifyResponder({
      url: 'http://127.0.0.1:1/x',
      retries: 2,
      sleep: async () => {},
      fetch: async (...args) => {
        calls++
        return fetch(...args)
      },
    })
    assert.equal((await dead.respond(anomaly())).status, 'failed')
    assert.equal(calls, 3)
  })
})

describe('response policy', () => {
  it('reports every problem of a policy at once', () => {
    assert.throws(
      () =>
        parseResponsePolicy(
          { rules: [{ minScore: 2, responders: ['pager'], features: ['colour'], extra: 1 }, 'x'] },
          ['notify'],
        ),
      (err: Error & { code?: string; details?: { problems: string[] } }) => {
        assert.equal(err.code, 'TSR_CONFIG')
        assert.equal(err.details?.problems.length, 5, err.message)
        return true
      },
    )
    assert.throws(
      () => parseDetectionFile('detection: { alertThreshold: 3, colour: 1 }\nfoo: 1\n'),
      {
        code: 'TSR_CONFIG',
      },
    )
  })
})

for (const backend of testBackends()) {
  describe(`responders on the store (${backend.name})`, () => {
    let store: Store
    before(async () => {
      store = await backend.open()
      await addIdentity(store, { ref: bot, kind: 'workload', from: '2026-11-01T00:00:00Z' })
    })
    after(async () => store.close())

    it('an anomaly over the threshold revokes through the deny-list within seconds, audited', async () => {
      const revocations = createRevocationList({ store })
      const events = createMemoryEventSink()
      const file = parseDetectionFile(`
responders:
  revoke: { ttlSeconds: 3600 }
  quarantine: {}
rules:
  - { name: contain, minScore: 0.6, identities: ['${td}/reporting/*'], features: [action], responders: [revoke, quarantine] }
  - { name: never, minScore: 0.99, responders: [quarantine] }
cooldownSeconds: 600
`)
      const responders = createResponders(file.responders, {
        store,
        revocations,
        clock: systemClock,
      })
      const engine = createResponseEngine({
        policy: parseResponsePolicy(
          file.policy,
          responders.map((r) => r.name),
        ),
        responders,
        events,
      })
      const detector = createAnomalyDetector({ responses: engine, events })
      for (const e of routine()) detector.score(e)
      // What an agent does: follow the deny-list, polling every second.
      const agentView = createDenyListMatcher((await revocations.list()).items)
      const t = new Date(start + 4 * 86_400_000 + 10 * 3_600_000)
      const fired = Date.now()
      detector.observe([
        {
          seq: 1,
          at: t,
          type: 'authz.decision',
          subject: bot,
          action: 'ssh:connect',
          resource: 'web-01',
          decision: 'deny',
        },
      ])
      let deniedAfter: number | undefined
      for (let i = 0; i < 10 && deniedAfter === undefined; i++) {
        await new Promise((r) => setTimeout(r, i === 0 ? 0 : 1000))
        agentView.apply((await revocations.list({ after: agentView.latest })).items)
        if (agentView.denies({ spiffeId: bot }, new Date())) deniedAfter = Date.now() - fired
      }
      assert.ok(deniedAfter !== undefined && deniedAfter < 5000, `denied after ${deniedAfter} ms`)
      await detector.settled()
      const firings = events.events.filter((e) => e.type === 'responder.fired')
      assert.deepEqual(
        firings.map((e) => [e.data?.responder, e.data?.rule, e.data?.status]),
        [
          ['revoke', 'contain', 'done'],
          ['quarantine', 'contain', 'done'],
        ],
      )
      assert.equal(firings[0]!.subject, bot)
      const state = await store.db
        .selectFrom('identity')
        .select(['state', 'attributes'])
        .where('ref', '=', bot)
        .where('valid_to', 'is', null)
        .executeTakeFirstOrThrow()
      assert.equal(state.state, 'quarantined')
      const versions = await store.db
        .selectFrom('identity')
        .select('state')
        .where('ref', '=', bot)
        .execute()
      assert.equal(versions.length, 2, 'a new version; the old one is kept')
      // Within the cooldown the same anomaly does not fire again.
      assert.deepEqual(await engine.handle(anomaly()), [])
    })

    it('disable sets the state; revoke skips identities that are not SPIFFE IDs', async () => {
      const clock = createFixedClock('2026-11-23T10:05:00Z')
      const revocations = createRevocationList({ store, clock })
      const [disable, revoke] = createResponders(
        { disable: {}, revoke: {} },
        { store, revocations, clock },
      )
      const arn = 'arn:aws:iam::111122223333:user/ci'
      await addIdentity(store, { ref: arn, kind: 'iam_user', from: '2026-11-01T00:00:00Z' })
      assert.deepEqual((await disable!.respond(anomaly(arn))).data, {
        previous: 'active',
        state: 'disabled',
        changed: true,
      })
      assert.equal((await revoke!.respond(anomaly(arn))).status, 'skipped')
      assert.equal((await disable!.respond(anomaly('arn:aws:iam::1:user/none'))).status, 'skipped')
    })
  })
}
