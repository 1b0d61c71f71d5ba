import type { EventObserver, EventSink, StoredAuditEvent } from '../audit/event-sink.js'
import type { FindingInput, FindingReporter, Severity } from '../posture/finding-types.js'
import { createBaseline, learn, type Baseline } from './baseline.js'
import type { BaselineRepo, BaselineScope } from './baseline-store.js'
import type { Anomaly } from './responder.js'
import type { ResponseEngine } from './response-policy.js'
import {
  defaultDetectionConfig,
  defaultPeerOf,
  detectionEventOf,
  featuresOf,
  scoreEvent,
  type DetectionConfig,
  type DetectionEvent,
  type ScoreResult,
} from './scoring.js'

export const anomalyRule = 'anomalous-behaviour'

export interface DetectorDeps {
  /** Where anomalies become findings (the posture finding store). */
  findings?: FindingReporter
  /** Where `detection.anomaly` events go (and, through the engine, `responder.fired`). */
  events?: EventSink
  responses?: ResponseEngine
  baselines?: BaselineRepo
  config?: Partial<DetectionConfig>
  /** The peer group of an identity when events name none (default: SPIFFE ID path prefix). */
  peerOf?: (identity: string) => string | undefined
  /** Side-effect failures (finding store, sink) land here; scoring carries on. */
  onError?: (err: unknown) => void
}

export interface DetectorStats {
  scored: number
  anomalies: number
  learning: number
  identities: number
  peerGroups: number
}

export interface AnomalyDetector extends EventObserver {
  /** Scores one event against the baselines, then learns it. Synchronous and cheap. */
  score(e: DetectionEvent): ScoreResult & { anomaly?: Anomaly }
  /** Loads persisted baselines (call once before the first event). */
  load(): Promise<void>
  /** Persists the baselines changed since the last flush. */
  flush(): Promise<void>
  /** Resolves when every finding, event and responder queued so far is done. */
  settled(): Promise<void>
  stats(): DetectorStats
}

/**
 * Streaming anomaly detection over the audit log. `observe` scores every event synchronously (so it
 * keeps up with the log), and queues the slow parts (findings, `detection.anomaly` events and
 * responders) on one chain in order, so a slow webhook delays responses, not the audit log.
 */
export function createAnomalyDetector(deps: DetectorDeps = {}): AnomalyDetector {
  const cfg: DetectionConfig = { ...defaultDetectionConfig, ...deps.config }
  const peerOf = deps.peerOf ?? defaultPeerOf
  const identities = new Map<string, Baseline>()
  const peers = new Map<string, Baseline>()
  const dirty = new Map<string, BaselineScope>()
  const stats = { scored: 0, anomalies: 0, learning: 0 }
  let chain: Promise<void> = Promise.resolve()
  const onError = deps.onError ?? (() => {})

  const enqueue = (work: () => Promise<void>) => {
    chain = chain.then(work).catch(onError)
  }

  function score(e: DetectionEvent): ScoreResult & { anomaly?: Anomaly } {
    const f = featuresOf(e)
    const group = e.peerGroup ?? peerOf(e.identity)
    let own = identities.get(e.identity)
    const peer = group === undefined ? undefined : peers.get(group)
    const result = scoreEvent(own, peer, e, f, cfg)
    stats.scored++
    if (result.learning) stats.learning++
    const flagged = result.score >= cfg.alertThreshold
    const weight = flagged ? cfg.flaggedWeight : 1
    if (!own) identities.set(e.identity, (own = createBaseline(e.at)))
    learn(own, e.at, f, weight)
    if (result.novel) own.noveltyCount++
    dirty.set(e.identity, 'identity')
    if (group !== undefined) {
      let p = peer
      if (!p) peers.set(group, (p = createBaseline(e.at)))
      learn(p, e.at, f, weight)
      dirty.set('peer:' + group, 'peer')
    }
    if (!flagged) return result
    stats.anomalies++
    const reasons = [...result.reasons].sort((a, b) => b.weight - a.weight)
    const top = reasons[0]!
    const anomaly: Anomaly = {
      identity: e.identity,
      ...(group !== undefined ? { peerGroup: group } : {}),
      score: result.score,
      reasons,
      explanation: reasons.map((r) => r.text).join('; '),
      event: e,
      findingKey: `${anomalyRule}:${e.identity}:${top.feature}:${
        top.feature === 'action' || top.feature === 'pair'
          ? e.action + ' ' + (e.resource ?? '')
          : top.feature === 'resource'
            ? (e.resource ?? '')
            : top.feature === 'address'
              ? (e.address ?? '')
              : top.feature === 'node'
                ? (e.node ?? '')
                : new Date(e.at).toISOString().slice(0, 13)
      }`,
    }
    return { ...result, anomaly }
  }

  async function sideEffects(anomalies: readonly Anomaly[]): Promise<void> {
    if (anomalies.length === 0) return
    if (deps.findings) {
      const findings: FindingInput[] = anomalies.map((a) => ({
        rule: anomalyRule,
        severity: severityOf(a.score),
        subjectType: 'identity',
        subjectRef: a.identity,
        dedupKey: a.findingKey,
        evidence: {
          score: Number(a.score.toFixed(3)),
          explanation: a.explanation,
          reasons: a.reasons,
          action: a.event.action,
          ...(a.event.resource ? { resource: a.event.resource } : {}),
          ...(a.event.node ? { node: a.event.node } : {}),
          ...(a.event.address ? { address: a.event.address } : {}),
          at: new Date(a.event.at).toISOString(),
          ...(a.event.seq !== undefined ? { eventSeq: a.event.seq } : {}),
          ...(a.peerGroup ? { peerGroup: a.peerGroup } : {}),
        },
      }))
      await deps.findings.report(anomalyRule, findings)
    }
    if (deps.events) {
      await deps.events.appendMany(
        anomalies.map((a) => ({
          type: 'detection.anomaly',
          actor: 'detection',
          subject: a.identity,
          action: a.event.action,
          ...(a.event.resource ? { resource: a.event.resource } : {}),
          data: {
            score: Number(a.score.toFixed(3)),
            explanation: a.explanation,
            finding: a.findingKey,
            ...(a.event.seq !== undefined ? { eventSeq: a.event.seq } : {}),
          },
        })),
      )
    }
    if (deps.responses) for (const a of anomalies) await deps.responses.handle(a)
  }

  return {
    score,
    observe(events: readonly StoredAuditEvent[]) {
      let anomalies: Anomaly[] | undefined
      for (const raw of events) {
        const e = detectionEventOf(raw)
        if (!e) continue
        const r = score(e)
        if (r.anomaly) (anomalies ??= []).push(r.anomaly)
      }
      if (anomalies) {
        const batch = anomalies
        enqueue(() => sideEffects(batch))
      }
    },
    async load() {
      if (!deps.baselines) return
      for (const item of await deps.baselines.loadAll()) {
        if (item.scope === 'identity') identities.set(item.key, item.baseline)
        else peers.set(item.key.replace(/^peer:/, ''), item.baseline)
      }
    },
    async flush() {
      if (!deps.baselines || dirty.size === 0) return
      const items = [...dirty.entries()].flatMap(([key, scope]) => {
        const baseline = scope === 'identity' ? identities.get(key) : peers.get(key.slice(5))
        return baseline ? [{ key, scope, baseline }] : []
      })
      dirty.clear()
      await deps.baselines.save(items)
    },
    settled: () => chain,
    stats: () => ({ ...stats, identities: identities.size, peerGroups: peers.size }),
  }
}

function severityOf(score: number): Severity {
  if (score >= 0.9) return 'high'
  if (score >= 0.75) return 'medium'
  return 'low'
}
