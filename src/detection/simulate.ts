import { createAnomalyDetector } from './detector.js'
import type { DetectionConfig, DetectionEvent } from './scoring.js'

/**
 * A simulated estate for measuring detection: four workloads with replicas (web servers, reporting
 * bots, ETL jobs, CI deployers) behaving to a weekly rhythm for `days` days, with benign changes
 * (a new table all bots start using, a replica rescheduled onto a new node, a new replica, address
 * churn within a subnet, a network migration, a weekend maintenance run, a backfill at ten times the
 * usual pace) and injected attacks in the second week. Deterministic for a seed.
 */
export interface SimulatedEvent extends DetectionEvent {
  /** The attack this event belongs to; undefined for normal and benign-change events. */
  attack?: string
  /** A benign change, labelled to explain false positives. */
  benign?: string
}

export interface SimulationOptions {
  seed?: number
  days?: number
  /** Monday 00:00 UTC of the first week. */
  start?: string
}

export const simulatedAttacks = {
  'bot-ssh': 'a reporting bot tries to SSH into a web server',
  'new-network': 'an ETL job credential used from an unknown network',
  'off-hours-burst': 'a CI deployer reads configuration in a burst at 03:00 on Sunday',
  exfil: 'a reporting bot reads 30 buckets it never touched',
  'web-new-action': 'a web replica drops a database table',
  'stolen-token-new-node': 'a reporting bot identity used from a node and network no bot uses',
} as const

const td = 'spiffe://sim.example/ns/prod'

function rng(seed: number): () => number {
  // mulberry32: small, fast and good enough for a workload simulation.
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function simulateEstate(options: SimulationOptions = {}): SimulatedEvent[] {
  const rand = rng(options.seed ?? 42)
  const days = options.days ?? 14
  const start = Date.parse(options.start ?? '2026-11-02T00:00:00Z')
  const hour = 3_600_000
  const out: SimulatedEvent[] = []
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  const at = (h: number) => start + h * hour + Math.floor(rand() * hour)
  const push = (e: SimulatedEvent) => out.push(e)

  for (let h = 0; h < days * 24; h++) {
    const day = Math.floor(h / 24)
    const hod = h % 24
    const weekday = day % 7 < 5
    // Web replicas: always on, busier in the day. web-7 joins on day 11.
    const replicas = day >= 11 ? 7 : 6
    for (let r = 1; r <= replicas; r++) {
      const id = `${td}/web/web-${r}`
      const node = r === 4 && day >= 10 ? 'node-w9' : `node-w${r}`
      const n = Math.round((hod >= 7 && hod < 22 ? 24 : 6) * (0.6 + rand() * 0.8))
      for (let i = 0; i < n; i++) {
        const x = rand()
        const [action, resource] =
          x < 0.6
            ? ['http:handle', 'svc/api']
            : x < 0.85
              ? ['db:select', 'db-01/app']
              : x < 0.99
                ? ['cache:get', 'redis-01']
                : ['db:insert', 'db-01/app']
        push({
          identity: id,
          action,
          resource,
          at: at(h),
          node,
          address: `10.1.0.${10 + r}`,
          ...(r === 4 && day === 10 ? { benign: 'rescheduled to node-w9' } : {}),
          ...(r === 7 && day === 11 ? { benign: 'new replica' } : {}),
        })
      }
    }
    // Reporting bots: weekdays 06:00–18:00, plus one Saturday maintenance run. From day 12 at
    // 10:00 the fleet moves to a new network (an infrastructure migration).
    const saturdayRun = day === 12 && hod === 10
    if ((weekday && hod >= 6 && hod < 18) || saturdayRun) {
      for (let r = 1; r <= 3; r++) {
        const id = `${td}/reporting/report-bot-${r}`
        const migrated = h >= 11 * 24 + 10
        for (let i = 0; i < 4 + Math.floor(rand() * 8); i++) {
          const newTable = day >= 9 && rand() < 0.3
          const [action, resource] = newTable
            ? ['db:select', 'db-01/reports_2026_11']
            : pick([
                ['db:select', 'db-01/reports'],
                ['db:select', 'db-01/reports'],
                ['s3:PutObject', 's3://reports'],
                ['s3:GetObject', 's3://report-templates'],
              ] as const)
          push({
            identity: id,
            action,
            resource,
            at: at(h),
            node: `node-r${r}`,
            address: migrated ? `10.5.0.${20 + r}` : `10.2.0.${20 + r}`,
            ...(newTable
              ? { benign: 'new monthly table' }
              : saturdayRun
                ? { benign: 'saturday maintenance run' }
                : migrated && h < 11 * 24 + 12
                  ? { benign: 'network migration' }
                  : {}),
          })
        }
      }
    }
    // ETL jobs: every hour; addresses move within their subnet from day 12.
    for (let r = 1; r <= 4; r++) {
      const id = `${td}/etl/etl-${r}`
      const churn = day >= 12
      for (let i = 0; i < 3 + Math.floor(rand() * 4); i++) {
        const [action, resource] = pick([
          ['s3:GetObject', 's3://raw'],
          ['s3:PutObject', 's3://curated'],
          ['db:copy', 'warehouse/events'],
        ] as const)
        push({
          identity: id,
          action,
          resource,
          at: at(h),
          node: `node-e${r}`,
          address: churn ? `10.3.0.${100 + r}` : `10.3.0.${30 + r}`,
          ...(churn && day === 12 ? { benign: 'address churn in subnet' } : {}),
        })
      }
    }
    // A backfill: etl-2 replays a day of data at ten times its usual pace, in working hours.
    if (day === 12 && hod === 14) {
      for (let i = 0; i < 120; i++) {
        push({
          identity: `${td}/etl/etl-2`,
          action: 's3:GetObject',
          resource: 's3://raw',
          at: start + h * hour + i * 1_000,
          node: 'node-e2',
          address: '10.3.0.102',
          benign: 'backfill',
        })
      }
    }
    // CI deployers: weekday working hours, a deploy now and then.
    if (weekday && hod >= 9 && hod < 17) {
      for (let r = 1; r <= 2; r++) {
        if (rand() > 0.35) continue
        const id = `${td}/ci/deployer-${r}`
        for (let i = 0; i < 6; i++) {
          push({
            identity: id,
            action: pick(['k8s:patch', 'k8s:get', 'k8s:get']),
            resource: pick(['k8s/prod/deployments', 'k8s/prod/configmaps']),
            at: at(h),
            node: 'node-ci',
            address: '10.4.0.5',
          })
        }
      }
    }
  }

  // Attacks, all in the second week (days 7–13).
  const when = (day: number, hod: number, minute: number) =>
    start + day * 24 * hour + hod * hour + minute * 60_000
  for (let i = 0; i < 4; i++) {
    push({
      identity: `${td}/reporting/report-bot-2`,
      action: 'ssh:connect',
      resource: 'host/web-01',
      at: when(9, 10, 15) + i * 20_000,
      node: 'node-r2',
      address: '10.2.0.22',
      attack: 'bot-ssh',
    })
  }
  for (let i = 0; i < 6; i++) {
    push({
      identity: `${td}/etl/etl-3`,
      action: pick(['s3:GetObject', 'db:copy']),
      resource: pick(['s3://raw', 'warehouse/events']),
      at: when(10, 14, 5) + i * 45_000,
      node: 'node-e3',
      address: '198.51.100.23',
      attack: 'new-network',
    })
  }
  for (let i = 0; i < 200; i++) {
    push({
      identity: `${td}/ci/deployer-1`,
      action: 'k8s:get',
      resource: 'k8s/prod/configmaps',
      at: when(13, 3, 10) + i * 600,
      node: 'node-ci',
      address: '10.4.0.5',
      attack: 'off-hours-burst',
    })
  }
  for (let i = 0; i < 30; i++) {
    push({
      identity: `${td}/reporting/report-bot-1`,
      action: 's3:GetObject',
      resource: `s3://finance-${i}`,
      at: when(8, 11, 0) + i * 5_000,
      node: 'node-r1',
      address: '10.2.0.21',
      attack: 'exfil',
    })
  }
  push({
    identity: `${td}/web/web-3`,
    action: 'db:drop',
    resource: 'db-01/app',
    at: when(11, 15, 30),
    node: 'node-w3',
    address: '10.1.0.13',
    attack: 'web-new-action',
  })
  for (let i = 0; i < 5; i++) {
    push({
      identity: `${td}/reporting/report-bot-3`,
      action: 'db:select',
      resource: 'db-01/reports',
      at: when(10, 16, 40) + i * 30_000,
      node: 'laptop-77',
      address: '203.0.113.50',
      attack: 'stolen-token-new-node',
    })
  }
  out.sort((a, b) => a.at - b.at)
  return out
}

export interface DetectionEvaluation {
  events: number
  attackEvents: number
  alerts: number
  truePositives: number
  falsePositives: number
  precision: number
  recall: number
  /** Attacks with at least one alerted event, over all attacks. */
  incidentRecall: number
  incidents: { attack: string; events: number; alerted: number; example?: string }[]
  falseAlertsPerDay: number
  /** False positives by benign change (or `normal`). */
  falsePositiveCauses: Record<string, number>
  /** Scoring throughput of this run, in-process (events per second). */
  eventsPerSecond: number
}

/** Runs the detector (no side effects) over a simulated stream and counts hits and misses. */
export function evaluateDetection(
  stream: readonly SimulatedEvent[],
  config: Partial<DetectionConfig> = {},
  now: () => number = () => performance.now(),
): DetectionEvaluation {
  const detector = createAnomalyDetector({ config })
  const alerted: boolean[] = new Array<boolean>(stream.length)
  const examples = new Map<string, string>()
  const t0 = now()
  for (let i = 0; i < stream.length; i++) {
    const r = detector.score(stream[i]!)
    alerted[i] = r.anomaly !== undefined
    const attack = stream[i]!.attack
    if (r.anomaly && attack && !examples.has(attack)) examples.set(attack, r.anomaly.explanation)
  }
  const elapsed = now() - t0
  let tp = 0
  let fp = 0
  let attackEvents = 0
  const causes: Record<string, number> = {}
  const byAttack = new Map<string, { events: number; alerted: number }>()
  stream.forEach((e, i) => {
    if (e.attack) {
      attackEvents++
      const s = byAttack.get(e.attack) ?? { events: 0, alerted: 0 }
      s.events++
      if (alerted[i]) s.alerted++
      byAttack.set(e.attack, s)
    }
    if (!alerted[i]) return
    if (e.attack) tp++
    else {
      fp++
      const cause = e.benign ?? 'normal'
      causes[cause] = (causes[cause] ?? 0) + 1
    }
  })
  const span = stream.length > 0 ? (stream[stream.length - 1]!.at - stream[0]!.at) / 86_400_000 : 1
  const incidents = [...byAttack.entries()].map(([attack, s]) => ({
    attack,
    ...s,
    ...(examples.has(attack) ? { example: examples.get(attack)! } : {}),
  }))
  return {
    events: stream.length,
    attackEvents,
    alerts: tp + fp,
    truePositives: tp,
    falsePositives: fp,
    precision: tp + fp === 0 ? 0 : tp / (tp + fp),
    recall: attackEvents === 0 ? 0 : tp / attackEvents,
    incidentRecall:
      incidents.length === 0 ? 0 : incidents.filter((x) => x.alerted > 0).length / incidents.length,
    incidents,
    falseAlertsPerDay: fp / Math.max(span, 1),
    falsePositiveCauses: causes,
    eventsPerSecond: elapsed > 0 ? (stream.length / elapsed) * 1000 : Infinity,
  }
}
