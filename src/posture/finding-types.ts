/**
 * The shape every finding producer reports in: posture rules, governance policy evaluation, drift
 * (reconciliation) and anomaly detection. The finding store (src/posture) deduplicates, keeps first
 * and last seen, and resolves findings whose condition is gone.
 */
export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical'

export interface FindingInput {
  rule: string
  severity: Severity
  /** `identity`, `credential`, `resource`, `entry`, `owner`, `workload`… */
  subjectType: string
  subjectId?: string
  /** A stable human reference: ARN, SPIFFE ID, identity ref. */
  subjectRef: string
  /** Why: the facts the rule saw (never secrets). */
  evidence: Record<string, unknown>
  ownerRef?: string
  /** Identity of the finding for deduplication; defaults to `rule` + `subjectRef`. */
  dedupKey?: string
}

export interface FindingReportResult {
  opened: number
  updated: number
  resolved: number
}

export interface FindingReporter {
  /**
   * Records what a rule sees now. New findings open, known ones have last_seen bumped (an accepted
   * one stays accepted until its acceptance expires). With `complete: true` the list is everything
   * the rule sees, so the rule's open findings missing from it resolve themselves.
   */
  report(
    rule: string,
    findings: readonly FindingInput[],
    options?: { complete?: boolean },
  ): Promise<FindingReportResult>
}

/**
 * Posture configuration, the part of governance-as-code (tessera.policy.yaml) that posture rules
 * read. Every field is optional: rules have documented defaults.
 */
export interface PostureConfig {
  /** Per rule id, its numeric thresholds, e.g. `{ 'certificate-expiring': { days: 30 } }`. */
  thresholds?: Record<string, Record<string, number>>
  /** Maximum credential/SVID TTL in seconds per identity kind. */
  maxTtlSeconds?: Record<string, number>
  /** Maximum static key age in days per identity kind. */
  maxKeyAgeDays?: Record<string, number>
  /** Resource refs or glob patterns (`arn:aws:s3:::prod-*`) that are crown jewels. */
  crownJewels?: string[]
  /** Grant actions or policy names machine identities must not hold (`*:*`, `AdministratorAccess`). */
  forbiddenGrants?: string[]
  /**
   * Identity kinds the trust-path rule starts from (default `ci_pipeline`, `oauth_app`,
   * `api_client`, `bot`, `ai_agent`); identities with attribute `trust: low` or a leaked credential
   * always count.
   */
  lowTrustKinds?: string[]
}
