import type { DetectionEvent, Reason } from './scoring.js'

/**
 * The `Responder` seam (DESIGN §3): what an anomaly triggers when a response rule's threshold is
 * met. One method; built-ins are `notify` (webhook), `disable` and `quarantine` (identity state),
 * and `revoke` (the deny-list). A responder never throws for an expected failure: it returns an
 * outcome, and the response engine audits every firing as `responder.fired`.
 */
export const responderKinds = ['notify', 'disable', 'revoke', 'quarantine'] as const
export type ResponderKind = (typeof responderKinds)[number]

export interface Anomaly {
  identity: string
  peerGroup?: string
  score: number
  reasons: Reason[]
  /** The reasons in one line: "never called ssh:connect on web-01; peers never do". */
  explanation: string
  event: DetectionEvent
  /** The dedup key of the finding raised for it. */
  findingKey: string
}

export interface ResponderOutcome {
  status: 'done' | 'skipped' | 'failed'
  detail?: string
  /** What the responder changed (a revocation id, the new state, the webhook's status). */
  data?: Record<string, unknown>
}

export interface Responder {
  readonly kind: ResponderKind
  /** Instance name from configuration (defaults to the kind). */
  readonly name: string
  respond(anomaly: Anomaly): Promise<ResponderOutcome>
}
