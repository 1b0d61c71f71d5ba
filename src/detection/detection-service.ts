import { discardEvents, type EventObserver, type EventSink } from '../audit/event-sink.js'
import { createDecisionUsageObserver } from '../inventory/usage/decision-usage.js'
import { createRevocationList } from '../lifecycle/revocations.js'
import type { FindingReporter } from '../posture/finding-types.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import { createBaselineRepo } from './baseline-store.js'
import { loadDetectionFile, type DetectionFile } from './detection-config.js'
import { createAnomalyDetector, type AnomalyDetector } from './detector.js'
import { createResponders } from './responder-registry.js'
import { createResponseEngine, parseResponsePolicy } from './response-policy.js'

export interface DetectionServiceDeps {
  store: Store
  clock?: Clock
  /** The audit log (`detection.anomaly`, `responder.fired`); discarded when absent. */
  events?: EventSink
  findings?: FindingReporter
  /** The detection config file (docs/detection.md), or its parsed form. */
  config?: string | DetectionFile
  fetch?: typeof fetch
  /** How often baselines and decision usage are written (default 10 s). */
  flushMs?: number
  onError?: (err: unknown) => void
}

export interface DetectionService {
  detector: AnomalyDetector
  /** What the audit log should call with every durable batch: the detector and decision usage. */
  observers: EventObserver[]
  /** Loads the baselines and starts the flush timer. */
  start(): Promise<void>
  /** Stops the timer and writes what is pending. */
  stop(): Promise<void>
}

/** Anomaly detection with its responders, and decisions as usage, for one server process. */
export function createDetectionService(deps: DetectionServiceDeps): DetectionService {
  const clock = deps.clock ?? systemClock
  const events = deps.events ?? discardEvents
  const file =
    typeof deps.config === 'string'
      ? loadDetectionFile(deps.config)
      : (deps.config ?? { detection: {}, responders: undefined, policy: {} })
  const responders = createResponders(file.responders, {
    store: deps.store,
    revocations: createRevocationList({ store: deps.store, clock }),
    clock,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  })
  const policy = parseResponsePolicy(
    file.policy,
    responders.map((r) => r.name),
  )
  const onError = deps.onError ?? (() => {})
  const detector = createAnomalyDetector({
    ...(deps.findings ? { findings: deps.findings } : {}),
    events,
    responses: createResponseEngine({ policy, responders, events, clock }),
    baselines: createBaselineRepo({ store: deps.store }),
    config: file.detection,
    onError,
  })
  const usage = createDecisionUsageObserver({ store: deps.store })
  let timer: NodeJS.Timeout | undefined
  let flushing = false
  const flush = async () => {
    await detector.flush()
    await usage.flush()
  }
  return {
    detector,
    observers: [detector, usage],
    async start() {
      await detector.load()
      timer = setInterval(() => {
        if (flushing) return
        flushing = true
        flush()
          .catch(onError)
          .finally(() => (flushing = false))
      }, deps.flushMs ?? 10_000)
      timer.unref()
    },
    async stop() {
      clearInterval(timer)
      await detector.settled()
      await flush()
    },
  }
}
