import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import {
  baselineFromJson,
  createAnomalyDetector,
  createBaselineRepo,
  defaultPeerOf,
  evaluateDetection,
  simulateEstate,
  simulatedAttacks,
} from '../../src/detection/index.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { createMemoryFindings } from './fakes.js'
import { routine, start, td } from './train.js'

const day = 86_400_000
const bot1 = `${td}/reporting/report-bot-1`

describe('anomaly scoring', () => {
  it('explains a reporting bot that tries to SSH into a web server', () => {
    const d = createAnomalyDetector()
    for (const e of routine()) d.score(e)
    const normal = d.score({
      identity: bot1,
      action: 'db:select',
      resource: 'db-01/reports',
      at: start + 4 * day + 10 * 3_600_000,
      node: 'worker-1',
      address: '10.2.0.1',
    })
    assert.equal(normal.anomaly, undefined)
    assert.ok(normal.score < 0.2, `routine scored ${normal.score}`)
    const ssh = d.score({
      identity: bot1,
      action: 'ssh:connect',
      resource: 'web-01',
      at: start + 4 * day + 10 * 3_600_000 + 60_000,
      node: 'worker-1',
      address: '10.2.0.1',
    })
    assert.ok(ssh.anomaly, 'flagged')
    assert.equal(ssh.reference, 'identity')
    assert.equal(ssh.anomaly.explanation, 'never called ssh:connect on web-01; peers never do')
  })

  it('lowers the score of what peers already do', () => {
    const d = createAnomalyDetector()
    for (const e of routine()) d.score(e)
    // web-1 reads reports now and then: new for web-2, but a peer does it.
    const t = start + 4 * day + 12 * 3_600_000
    for (let i = 0; i < 3; i++) {
      d.score({
        identity: `${td}/web/web-1`,
        action: 'db:select',
        resource: 'db-01/reports',
        at: t + i * 1000,
        node: 'web-01',
        address: '10.1.0.1',
      })
    }
    const r = d.score({
      identity: `${td}/web/web-2`,
      action: 'db:select',
      resource: 'db-01/reports',
      at: t + 5000,
      node: 'web-02',
      address: '10.1.0.2',
    })
    assert.equal(r.anomaly, undefined)
    assert.match(r.reasons[0]!.text, /never touched db-01\/reports; peers do/)
  })

  it('uses the peers as the prior of a new replica (cold start) and learns nothing alone', () => {
    const d = createAnomalyDetector()
    for (const e of routine()) d.score(e)
    const t = start + 4 * day + 12 * 3_600_000
    const fresh = `${td}/web/web-9`
    const ok = d.score({
      identity: fresh,
      action: 'http:handle',
      resource: 'svc/api',
      at: t,
      node: 'web-01',
      address: '10.1.0.1',
    })
    assert.equal(ok.reference, 'peers')
    assert.equal(ok.anomaly, undefined)
    const odd = d.score({
      identity: fresh,
      action: 'iam:CreateUser',
      resource: 'aws/iam',
      at: t + 1000,
      node: 'web-01',
      address: '10.1.0.1',
    })
    assert.ok(odd.anomaly)
    assert.match(
      odd.anomaly.explanation,
      /is new, and its peers never call iam:CreateUser on aws\/iam/,
    )
    // No peers, no history: the learning period makes no judgement.
    const loner = d.score({ identity: 'arn:aws:iam::1:user/x', action: 'anything', at: t })
    assert.equal(loner.learning, true)
    assert.equal(loner.score, 0)
  })

  it('flags a credential used from a new network and an off-hours burst', () => {
    const d = createAnomalyDetector()
    for (const e of routine(7)) d.score(e)
    const t = start + 7 * day + 10 * 3_600_000
    const net = d.score({
      identity: bot1,
      action: 'db:select',
      resource: 'db-01/reports',
      at: t,
      node: 'worker-1',
      address: '198.51.100.7',
    })
    assert.ok(net.anomaly)
    assert.match(
      net.anomaly.explanation,
      /first request from 198\.51\.100\.7 \(a network never seen: 198\.51\.0\.0\/16\)/,
    )
    // Sunday 03:00 (start is a Monday; day 13 is a Sunday): 100 reads in one minute.
    const sunday = start + 13 * day + 3 * 3_600_000
    let flagged = 0
    let last = ''
    for (let i = 0; i < 100; i++) {
      const r = d.score({
        identity: `${td}/reporting/report-bot-2`,
        action: 'db:select',
        resource: 'db-01/reports',
        at: sunday + i * 500,
        node: 'worker-2',
        address: '10.2.0.2',
      })
      if (r.anomaly) {
        flagged++
        last = r.anomaly.explanation
      }
    }
    assert.ok(flagged > 50, `flagged ${flagged} of 100`)
    assert.match(last, /events this minute/)
    assert.match(last, /active Sun 03:00 UTC/)
  })

  it('raises findings and detection.anomaly events from the audit stream, and skips its own events', async () => {
    const findings = createMemoryFindings()
    const events = createMemoryEventSink()
    const d = createAnomalyDetector({ findings, events })
    let seq = 0
    const stored = routine().map((e) => ({
      seq: ++seq,
      at: new Date(e.at),
      type: 'authz.decision',
      subject: e.identity,
      action: e.action,
      ...(e.resource ? { resource: e.resource } : {}),
      decision: 'allow',
      data: { node: e.node, sourceAddress: e.address },
    }))
    d.observe(stored)
    const t = new Date(start + 4 * day + 10 * 3_600_000)
    d.observe([
      {
        seq: ++seq,
        at: t,
        type: 'authz.decision',
        subject: bot1,
        action: 'ssh:connect',
        resource: 'web-01',
        decision: 'deny',
        data: { node: 'worker-1' },
      },
      {
        seq: ++seq,
        at: t,
        type: 'detection.anomaly',
        subject: bot1,
        action: 'wipe:disk',
        resource: 'web-01',
      },
      { seq: ++seq, at: t, type: 'responder.fired', subject: bot1, action: 'revoke' },
    ])
    await d.settled()
    assert.equal(d.stats().anomalies, 1)
    const f = [...findings.byKey.values()]
    assert.equal(f.length, 1)
    assert.equal(f[0]!.rule, 'anomalous-behaviour')
    assert.equal(f[0]!.subjectRef, bot1)
    assert.equal(f[0]!.evidence.explanation, 'never called ssh:connect on web-01; peers never do')
    assert.equal(f[0]!.evidence.eventSeq, seq - 2)
    assert.deepEqual(
      events.events.map((e) => e.type),
      ['detection.anomaly'],
    )
  })

  it('derives peers from SPIFFE ID paths only', () => {
    assert.equal(defaultPeerOf(`${td}/web/web-3`), `${td}/web`)
    assert.equal(defaultPeerOf('spiffe://example.org/web'), undefined)
    assert.equal(defaultPeerOf('arn:aws:iam::1:role/x'), undefined)
  })

  it('reads any stored baseline without throwing (fuzz)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        baselineFromJson(v)
        baselineFromJson({
          v: 1,
          events: 1,
          firstSeen: 0,
          hours: new Array(168).fill(0),
          counts: v,
        })
      }),
      { numRuns: 500 },
    )
  })

  it('finds every injected attack in the simulated estate, with few false alerts', () => {
    const r = evaluateDetection(simulateEstate({ seed: 7 }))
    assert.equal(r.incidents.length, Object.keys(simulatedAttacks).length)
    assert.equal(r.incidentRecall, 1, JSON.stringify(r.incidents))
    assert.ok(r.precision >= 0.9, `precision ${r.precision}`)
    assert.ok(r.falseAlertsPerDay < 1, `false alerts per day ${r.falseAlertsPerDay}`)
  })
})

for (const backend of testBackends()) {
  describe(`baselines survive a restart (${backend.name})`, () => {
    let store: Store
    before(async () => (store = await backend.open()))
    after(async () => store.close())

    it('a restarted detector scores with what it had learnt', async () => {
      const first = createAnomalyDetector({ baselines: createBaselineRepo({ store }) })
      await first.load()
      for (const e of routine()) first.score(e)
      await first.flush()
      const rows = await store.db
        .selectFrom('detection_baseline')
        .select(['key', 'scope'])
        .execute()
      assert.equal(rows.filter((r) => r.scope === 'identity').length, 6)
      assert.deepEqual(
        rows
          .filter((r) => r.scope === 'peer')
          .map((r) => r.key)
          .sort(),
        [`peer:${td}/reporting`, `peer:${td}/web`],
      )
      const second = createAnomalyDetector({ baselines: createBaselineRepo({ store }) })
      await second.load()
      assert.equal(second.stats().identities, 6)
      const t = start + 4 * day + 10 * 3_600_000
      const known = second.score({
        identity: bot1,
        action: 'db:select',
        resource: 'db-01/reports',
        at: t,
        node: 'worker-1',
        address: '10.2.0.1',
      })
      assert.equal(known.learning, false)
      assert.equal(known.anomaly, undefined)
      const ssh = second.score({
        identity: bot1,
        action: 'ssh:connect',
        resource: 'web-01',
        at: t + 1000,
        node: 'worker-1',
        address: '10.2.0.1',
      })
      assert.equal(ssh.anomaly?.explanation, 'never called ssh:connect on web-01; peers never do')
      // A fresh detector without the store would still be learning.
      const amnesiac = createAnomalyDetector()
      assert.equal(
        amnesiac.score({ identity: bot1, action: 'ssh:connect', resource: 'web-01', at: t })
          .learning,
        true,
      )
    })
  })
}
