import type { AuditEventInput, EventSink } from '../audit/event-sink.js'

/**
 * Decision events, batched. Every decision is pushed here and the batcher hands the sink one
 * `appendMany` per turn of the event loop (at most `maxBatch` events each), so a burst of decisions
 * costs one durable write, not one per decision. `push` returns a promise that settles when the
 * event's batch is durable: the HTTP route awaits it (an answered decision is in the log), the
 * in-process call does not (the decision is returned at once; `flush()` waits for the log).
 */
export interface DecisionEventBatcher {
  push(event: AuditEventInput): Promise<void>
  /** Resolves when every event pushed so far is durable (or failed and was reported). */
  flush(): Promise<void>
}

export function createDecisionEventBatcher(deps: {
  sink: EventSink
  /** Called with a batch that could not be appended (its promises reject too). */
  onError?: (err: unknown, lost: number) => void
  maxBatch?: number
}): DecisionEventBatcher {
  const maxBatch = deps.maxBatch ?? 1000
  let pending: AuditEventInput[] = []
  let waiters: { resolve: () => void; reject: (err: unknown) => void }[] = []
  let scheduled = false
  let inFlight: Promise<void> = Promise.resolve()

  function drain(): Promise<void> {
    scheduled = false
    const batches: [AuditEventInput[], typeof waiters][] = []
    while (pending.length > 0) {
      batches.push([pending.splice(0, maxBatch), waiters.splice(0, maxBatch)])
    }
    pending = []
    waiters = []
    // Batches are written one after another, in order, after any batch already being written.
    const previous = inFlight
    inFlight = (async () => {
      await previous
      for (const [events, ws] of batches) {
        try {
          await deps.sink.appendMany(events)
          for (const w of ws) w.resolve()
        } catch (err) {
          deps.onError?.(err, events.length)
          for (const w of ws) w.reject(err)
        }
      }
    })()
    return inFlight
  }

  return {
    push(event) {
      const p = new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }))
      pending.push(event)
      if (pending.length >= maxBatch) void drain()
      else if (!scheduled) {
        scheduled = true
        setImmediate(() => void drain())
      }
      return p
    },
    async flush() {
      if (pending.length > 0) await drain()
      else await inFlight
    },
  }
}
