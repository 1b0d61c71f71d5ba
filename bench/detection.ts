/**
 * Anomaly detection: precision and recall on the simulated estate with injected attacks (several
 * seeds), and the scorer's throughput in-process, the part of the events budget (DESIGN.md §7:
 * ≥ 50,000 events/s into PostgreSQL with the hash chain and scoring on) that scoring takes. The
 * throughput is given per CPU-second of this process as well as per wall second, because the
 * machine may be shared.
 */
import { performance } from 'node:perf_hooks'
import {
  createAnomalyDetector,
  evaluateDetection,
  simulateEstate,
  type DetectionEvent,
} from '../src/detection/index.js'
import { fmtInt, heading, report } from './support.js'

const budget = 50_000

/** A large estate: `identities` identities in peer groups of 20, each with its own habits. */
function largeStream(identities: number, events: number): DetectionEvent[] {
  const out: DetectionEvent[] = new Array<DetectionEvent>(events)
  const start = Date.parse('2026-11-02T00:00:00Z')
  let seed = 7
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
  for (let i = 0; i < events; i++) {
    const id = Math.floor(rand() * identities)
    const group = Math.floor(id / 20)
    const k = Math.floor(rand() * 6)
    out[i] = {
      identity: `spiffe://bench.example/ns/g${group}/w${id}`,
      action: `svc${group % 50}:op${k}`,
      resource: `res/${group}/${k % 3}`,
      at: start + Math.floor((i / events) * 14 * 86_400_000),
      node: `node-${id % 400}`,
      address: `10.${group % 256}.${id % 256}.${k}`,
    }
  }
  return out
}

function throughput(stream: readonly DetectionEvent[], rounds: number) {
  let bestWall = 0
  let bestCpu = 0
  for (let r = 0; r < rounds; r++) {
    const d = createAnomalyDetector()
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (const e of stream) d.score(e)
    const wall = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const cpuMs = (cpu.user + cpu.system) / 1000
    bestWall = Math.max(bestWall, (stream.length / wall) * 1000)
    bestCpu = Math.max(bestCpu, (stream.length / cpuMs) * 1000)
  }
  return { wall: bestWall, cpu: bestCpu }
}

export async function main(args: string[]): Promise<void> {
  const seeds = args.length > 0 ? args.map(Number) : [42, 7, 1234]
  heading('detection quality on the simulated estate (src/detection/simulate.ts)')
  let tp = 0
  let fp = 0
  let attacks = 0
  let incidents = 0
  let found = 0
  for (const seed of seeds) {
    const r = evaluateDetection(simulateEstate({ seed }))
    tp += r.truePositives
    fp += r.falsePositives
    attacks += r.attackEvents
    incidents += r.incidents.length
    found += r.incidents.filter((i) => i.alerted > 0).length
    report(
      `seed ${seed}: ${fmtInt(r.events)} events, ${r.attackEvents} attack events`,
      `P ${(r.precision * 100).toFixed(1)}% R ${(r.recall * 100).toFixed(1)}%`,
      `incidents ${r.incidents.filter((i) => i.alerted > 0).length}/${r.incidents.length}, false alerts/day ${r.falseAlertsPerDay.toFixed(2)}`,
    )
  }
  report(
    'all seeds (events)',
    `P ${((tp / (tp + fp)) * 100).toFixed(1)}% R ${((tp / attacks) * 100).toFixed(1)}%`,
    `incidents found ${found}/${incidents}`,
  )

  heading('scoring throughput, in-process (budget: the events pipeline ≥ 50,000 events/s)')
  const small = simulateEstate({ seed: 42 })
  const s = throughput(small, 5)
  report(
    `simulated estate (${fmtInt(small.length)} events, 20 identities)`,
    `${fmtInt(s.wall)} /s wall`,
    `${fmtInt(s.cpu)} /s per CPU-second; ${s.cpu >= budget ? 'keeps up' : 'BELOW'} with ${fmtInt(budget)}/s`,
  )
  const large = largeStream(10_000, 500_000)
  const l = throughput(large, 3)
  report(
    `large estate (500,000 events, 10,000 identities)`,
    `${fmtInt(l.wall)} /s wall`,
    `${fmtInt(l.cpu)} /s per CPU-second; ${l.cpu >= budget ? 'keeps up' : 'BELOW'} with ${fmtInt(budget)}/s`,
  )
  const mem = process.memoryUsage()
  report('heap after the large estate', `${fmtInt(mem.heapUsed / 1048576)} MiB`, '')
}
