/** Offboarding: what leaves (a person, a team, a service) and what must be done about it. */

export const offboardingSubjectTypes = ['person', 'team', 'service'] as const
export type OffboardingSubjectType = (typeof offboardingSubjectTypes)[number]

export const stepActions = ['reassign', 'rotate', 'revoke', 'disable'] as const
export type StepAction = (typeof stepActions)[number]

export type StepStatus = 'pending' | 'running' | 'done' | 'failed'
export type PlanStatus = 'planned' | 'executing' | 'done' | 'failed'

export interface OffboardingRequest {
  subjectType: OffboardingSubjectType
  /** Person email, team slug, or the service's identity ref / `service` attribute. */
  subject: string
  /** Who takes over owned identities (default: the person's team, the team's parent team). */
  reassignTo?: string
}

export interface AffectedIdentity {
  id: string
  ref: string
  kind: string
  source: string
  state: string
  /** How the subject relates to it: owner, co-owner, creator, delegator, service. */
  relations: string[]
  /** The subject was its only (present) owner. */
  soleOwner: boolean
}

export interface AffectedCredential {
  id: string
  ref: string
  credentialType: string
  identityRef: string | null
  /** introduced (commit author), seen (in a repository they worked in), created-identity. */
  relation: 'introduced' | 'seen' | 'created-identity' | 'service'
  repositories?: string[]
}

export interface PlanStep {
  seq: number
  action: StepAction
  targetType: 'identity' | 'credential'
  targetId: string
  targetRef: string
  reason: string
  params: Record<string, unknown>
  status: StepStatus
  attempts: number
  result: Record<string, unknown> | null
  error: string | null
}

export interface OffboardingPlan {
  /** Absent for a dry run (nothing stored). */
  id?: string
  subjectType: OffboardingSubjectType
  subject: string
  status: PlanStatus
  reassignTo: string | null
  identities: AffectedIdentity[]
  credentials: AffectedCredential[]
  steps: PlanStep[]
  warnings: string[]
  createdAt: string
  finishedAt: string | null
}

/** The target a step executor acts on, with the plan it belongs to (for idempotent markers). */
export interface StepTarget {
  planId: string
  seq: number
  action: StepAction
  targetType: 'identity' | 'credential'
  targetId: string
  targetRef: string
  reason: string
  params: Record<string, unknown>
  actor: string
}

/**
 * What executes steps. Every executor must be idempotent: a step interrupted after its effect and
 * before it was recorded as done is executed again on resume, and must not act twice.
 */
export interface StepExecutors {
  reassign(step: StepTarget): Promise<Record<string, unknown>>
  rotate(step: StepTarget): Promise<Record<string, unknown>>
  revoke(step: StepTarget): Promise<Record<string, unknown>>
  disable(step: StepTarget): Promise<Record<string, unknown>>
}

/** The rotation port: the rotation engine plugs in here; without it a request is recorded. */
export interface CredentialRotator {
  rotate(credential: {
    id: string
    ref: string
    credentialType: string
    identityRef: string | null
    reason: string
    planId: string
  }): Promise<{ status: 'rotated' | 'requested'; detail: string }>
}
