/**
 * The audit seam every domain reports through. A module that does something security-relevant
 * (issue, rotate, revoke, register, decide, offboard, change a policy) takes an `EventSink` in its
 * deps and appends an event; the audit log (src/audit) turns it into a hash-chained row. Domain code
 * never writes the event table itself.
 */
export interface AuditEventInput {
  /**
   * Dotted type, domain first: `issuance.x509`, `issuance.jwt`, `revocation.created`,
   * `entry.created`, `authz.decision`, `rotation.step`, `offboarding.step`, `dynamic.created`,
   * `policy.changed`, `discovery.change`, `admin.api`, `detection.anomaly`, `responder.fired`.
   */
  type: string
  /** Who acted: an API token id, a SPIFFE ID, a person, `system`. */
  actor?: string
  /** The identity the act is about (SPIFFE ID, identity ref or id). */
  subject?: string
  /** The resource acted on, when there is one. */
  resource?: string
  action?: string
  /** `allow` or `deny` for decisions; absent otherwise. */
  decision?: string
  requestId?: string
  /** Extra detail. Never secrets: fingerprints and redacted previews only. */
  data?: Record<string, unknown>
  /** When it happened; the log's clock when absent. */
  at?: Date
}

export interface EventSink {
  /** Resolves once the event is durable: an acknowledged event survives a crash. */
  append(event: AuditEventInput): Promise<void>
  /** The same for several events, in order, in one durable write. */
  appendMany(events: readonly AuditEventInput[]): Promise<void>
}

/** A sink that drops everything: for callers that opted out of auditing (tests of other behaviour). */
export const discardEvents: EventSink = {
  append: async () => {},
  appendMany: async () => {},
}

/** An in-memory fake for tests: keeps every event it is given, in order. */
export function createMemoryEventSink(): EventSink & { readonly events: AuditEventInput[] } {
  const events: AuditEventInput[] = []
  return {
    events,
    append: async (event) => {
      events.push(event)
    },
    appendMany: async (batch) => {
      events.push(...batch)
    },
  }
}

/** An event as the log stored it: its place in the chain and its time. */
export interface StoredAuditEvent extends AuditEventInput {
  seq: number
  at: Date
}

/**
 * What reads the event stream as it is written (anomaly detection, usage from decisions). The audit
 * log calls every observer with each durable batch, in order; an observer must keep up or buffer.
 */
export interface EventObserver {
  observe(events: readonly StoredAuditEvent[]): void | Promise<void>
}
