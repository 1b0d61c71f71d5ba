import type { EventObserver, StoredAuditEvent } from '../../audit/event-sink.js'
import type { Store } from '../../store/store.js'
import { aggregateUsage, recordUsage } from './record-usage.js'
import type { UsageRecord } from './usage-record.js'

export const decisionUsageSource = 'tessera:authz'

export interface DecisionUsageObserver extends EventObserver {
  /** Writes what has been buffered (adds to the hour's count). */
  flush(): Promise<void>
  /** Decisions buffered and not yet written. */
  readonly pending: number
}

export interface DecisionUsageDeps {
  store: Pick<Store, 'transaction'>
  /** Flush by itself once this many decisions are buffered (default 10,000). */
  maxPending?: number
}

/**
 * Turns allowed `authz.decision` events into usage (source `tessera:authz`). Counts are added, not
 * replaced, because each batch holds new decisions only; the caller flushes on a timer and at
 * shutdown. A denied decision is an attempt and does not count as use.
 */
export function createDecisionUsageObserver(deps: DecisionUsageDeps): DecisionUsageObserver {
  const maxPending = deps.maxPending ?? 10_000
  let buffer: UsageRecord[] = []
  let writing: Promise<void> = Promise.resolve()

  const flush = async () => {
    const records = buffer
    buffer = []
    if (records.length === 0) return writing
    writing = writing.then(async () => {
      await recordUsage(deps, aggregateUsage(records), {
        source: decisionUsageSource,
        mode: 'add',
      })
    })
    return writing
  }

  return {
    observe(events: readonly StoredAuditEvent[]) {
      for (const e of events) {
        if (e.type !== 'authz.decision' || e.decision !== 'allow') continue
        if (!e.subject || !e.resource || !e.action) continue
        buffer.push({ identity: e.subject, resource: e.resource, action: e.action, at: e.at })
      }
      if (buffer.length >= maxPending) return flush()
      return undefined
    },
    flush,
    get pending() {
      return buffer.length
    },
  }
}
