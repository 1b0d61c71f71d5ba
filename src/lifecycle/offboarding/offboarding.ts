import { randomUUID } from 'node:crypto'
import { TesseraError } from '../../errors.js'
import type { EventSink } from '../../audit/event-sink.js'
import { systemClock, type Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/index.js'
import {
  offboardingSubjectTypes,
  type OffboardingPlan,
  type OffboardingRequest,
  type PlanStep,
  type StepExecutors,
} from './offboarding-types.js'
import { proposePlan } from './planner.js'

export interface Offboarding {
  /** The plan, computed now and not stored (a dry run). */
  preview(request: OffboardingRequest): Promise<OffboardingPlan>
  /**
   * Stores a plan. An unfinished plan for the same subject is returned instead of a new one, so
   * re-running `offboard --execute` after a crash resumes it.
   */
  plan(request: OffboardingRequest, actor?: string): Promise<OffboardingPlan>
  get(id: string): Promise<OffboardingPlan | undefined>
  list(options?: { subject?: string; limit?: number }): Promise<OffboardingPlan[]>
  /**
   * Executes the plan's steps in order, skipping those already done; each done step appends an
   * `offboarding.step` event. Safe to call again after a failure or a crash: it resumes.
   */
  execute(id: string, actor?: string): Promise<OffboardingPlan>
}

export interface OffboardingDeps {
  store: Store
  executors: StepExecutors
  events: EventSink
  clock?: Clock
  newId?: () => string
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function createOffboarding({
  store,
  executors,
  events,
  clock = systemClock,
  newId = randomUUID,
}: OffboardingDeps): Offboarding {
  const db = store.db

  function check(request: OffboardingRequest): OffboardingRequest {
    if (!offboardingSubjectTypes.includes(request.subjectType)) {
      throw new TesseraError(
        'TSR_VALIDATION',
        `subjectType must be one of ${offboardingSubjectTypes.join(', ')}`,
      )
    }
    if (typeof request.subject !== 'string' || request.subject.trim() === '') {
      throw new TesseraError('TSR_VALIDATION', 'subject is required')
    }
    if (request.reassignTo !== undefined && request.reassignTo.trim() === '') {
      throw new TesseraError('TSR_VALIDATION', 'reassignTo must not be empty')
    }
    return { ...request, subject: request.subject.trim() }
  }

  async function load(id: string): Promise<OffboardingPlan | undefined> {
    if (!uuidPattern.test(id)) return undefined
    const plan = await db
      .selectFrom('offboarding_plan')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    if (!plan) return undefined
    const steps = await db
      .selectFrom('offboarding_step')
      .selectAll()
      .where('plan_id', '=', id)
      .orderBy('seq')
      .execute()
    const summary = (
      typeof plan.summary === 'string' ? JSON.parse(plan.summary) : plan.summary
    ) as Pick<OffboardingPlan, 'identities' | 'credentials' | 'warnings'>
    return {
      id: plan.id,
      subjectType: plan.subject_type,
      subject: plan.subject_ref,
      status: plan.status,
      reassignTo: plan.reassign_to,
      identities: summary.identities ?? [],
      credentials: summary.credentials ?? [],
      warnings: summary.warnings ?? [],
      steps: steps.map((s): PlanStep => ({
        seq: s.seq,
        action: s.action,
        targetType: s.target_type,
        targetId: s.target_id,
        targetRef: s.target_ref,
        reason: s.reason,
        params: (typeof s.params === 'string' ? JSON.parse(s.params) : s.params) as Record<
          string,
          unknown
        >,
        status: s.status,
        attempts: Number(s.attempts),
        result: (typeof s.result === 'string' ? JSON.parse(s.result) : s.result) as Record<
          string,
          unknown
        > | null,
        error: s.error,
      })),
      createdAt: new Date(plan.created_at).toISOString(),
      finishedAt: plan.finished_at ? new Date(plan.finished_at).toISOString() : null,
    }
  }

  async function preview(request: OffboardingRequest): Promise<OffboardingPlan> {
    const r = check(request)
    const p = await proposePlan(db, r)
    return {
      subjectType: r.subjectType,
      subject: r.subject,
      status: 'planned',
      reassignTo: p.reassignTo,
      identities: p.identities,
      credentials: p.credentials,
      warnings: p.warnings,
      steps: p.steps.map((s) => ({
        ...s,
        status: 'pending',
        attempts: 0,
        result: null,
        error: null,
      })),
      createdAt: clock.now().toISOString(),
      finishedAt: null,
    }
  }

  async function setStep(planId: string, seq: number, values: Record<string, unknown>) {
    await db
      .updateTable('offboarding_step')
      .set(values)
      .where('plan_id', '=', planId)
      .where('seq', '=', seq)
      .execute()
  }

  async function setPlan(planId: string, values: Record<string, unknown>) {
    await db
      .updateTable('offboarding_plan')
      .set({ ...values, updated_at: clock.now() })
      .where('id', '=', planId)
      .execute()
  }

  return {
    preview,

    async plan(request, actor) {
      const r = check(request)
      const unfinished = await db
        .selectFrom('offboarding_plan')
        .select('id')
        .where('subject_type', '=', r.subjectType)
        .where('subject_ref', '=', r.subject)
        .where('status', '!=', 'done')
        .orderBy('created_at', 'desc')
        .executeTakeFirst()
      if (unfinished) return (await load(unfinished.id))!
      const p = await preview(r)
      const id = newId()
      const now = clock.now()
      await store.transaction(async (tx) => {
        await tx.db
          .insertInto('offboarding_plan')
          .values({
            id,
            subject_type: r.subjectType,
            subject_ref: r.subject,
            status: 'planned',
            reassign_to: p.reassignTo,
            summary: JSON.stringify({
              identities: p.identities,
              credentials: p.credentials,
              warnings: p.warnings,
            }),
            created_at: now,
            created_by: actor ?? null,
            updated_at: now,
          })
          .execute()
        for (let i = 0; i < p.steps.length; i += 500) {
          await tx.db
            .insertInto('offboarding_step')
            .values(
              p.steps.slice(i, i + 500).map((s) => ({
                plan_id: id,
                seq: s.seq,
                action: s.action,
                target_type: s.targetType,
                target_id: s.targetId,
                target_ref: s.targetRef,
                reason: s.reason,
                params: JSON.stringify(s.params),
                status: 'pending' as const,
              })),
            )
            .execute()
        }
      })
      return (await load(id))!
    },

    get: load,

    async list(options = {}) {
      let q = db.selectFrom('offboarding_plan').select('id')
      if (options.subject !== undefined) q = q.where('subject_ref', '=', options.subject)
      const rows = await q
        .orderBy('created_at', 'desc')
        .limit(options.limit ?? 50)
        .execute()
      const out: OffboardingPlan[] = []
      for (const r of rows) out.push((await load(r.id))!)
      return out
    },

    async execute(id, actor = 'system') {
      const plan = await load(id)
      if (!plan) throw new TesseraError('TSR_NOT_FOUND', `no offboarding plan ${id}`)
      if (plan.status === 'done') return plan
      await setPlan(id, { status: 'executing' })
      for (const step of plan.steps) {
        const event = (result: Record<string, unknown>) => ({
          type: 'offboarding.step',
          actor,
          subject: step.targetRef,
          action: step.action,
          data: {
            plan: id,
            seq: step.seq,
            subjectType: plan.subjectType,
            offboarded: plan.subject,
            targetType: step.targetType,
            reason: step.reason,
            result,
          },
        })
        if (step.status === 'done') {
          // Done but its event not yet durable (a crash in between): record it now, once.
          const row = await db
            .selectFrom('offboarding_step')
            .select('audited')
            .where('plan_id', '=', id)
            .where('seq', '=', step.seq)
            .executeTakeFirstOrThrow()
          if (!row.audited) {
            await events.append(event(step.result ?? {}))
            await setStep(id, step.seq, { audited: true })
          }
          continue
        }
        await setStep(id, step.seq, {
          status: 'running',
          attempts: step.attempts + 1,
          started_at: clock.now(),
          error: null,
        })
        let result: Record<string, unknown>
        try {
          result = await executors[step.action]({
            planId: id,
            seq: step.seq,
            action: step.action,
            targetType: step.targetType,
            targetId: step.targetId,
            targetRef: step.targetRef,
            reason: step.reason,
            params: step.params,
            actor,
          })
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err)
          await setStep(id, step.seq, { status: 'failed', error: message.slice(0, 2000) })
          await setPlan(id, { status: 'failed' })
          throw new TesseraError(
            'TSR_OFFBOARDING_STEP',
            `offboarding plan ${id} step ${step.seq} (${step.action} ${step.targetRef}) failed: ${message}; run it again to resume`,
            { cause: err, details: { plan: id, seq: step.seq } },
          )
        }
        await setStep(id, step.seq, {
          status: 'done',
          result: JSON.stringify(result),
          finished_at: clock.now(),
        })
        await events.append(event(result))
        await setStep(id, step.seq, { audited: true })
      }
      await setPlan(id, { status: 'done', finished_at: clock.now() })
      return (await load(id))!
    },
  }
}
