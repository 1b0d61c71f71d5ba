import { Type, type TSchema } from 'typebox'
import { TesseraError } from '../../errors.js'
import {
  offboardingSubjectTypes,
  stepActions,
  type Offboarding,
} from '../../lifecycle/offboarding/index.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
const Free = Type.Object({}, { additionalProperties: true })

export const OffboardingPlanSchema = Type.Object(
  {
    id: Type.Optional(Type.String()),
    subjectType: Type.Enum([...offboardingSubjectTypes], { type: 'string' }),
    subject: Type.String(),
    status: Type.Enum(['planned', 'executing', 'done', 'failed'], { type: 'string' }),
    reassignTo: nullable(Type.String()),
    identities: Type.Array(
      Type.Object({
        id: Type.String(),
        ref: Type.String(),
        kind: Type.String(),
        source: Type.String(),
        state: Type.String(),
        relations: Type.Array(Type.String()),
        soleOwner: Type.Boolean(),
      }),
    ),
    credentials: Type.Array(
      Type.Object({
        id: Type.String(),
        ref: Type.String(),
        credentialType: Type.String(),
        identityRef: nullable(Type.String()),
        relation: Type.String(),
        repositories: Type.Optional(Type.Array(Type.String())),
      }),
    ),
    steps: Type.Array(
      Type.Object({
        seq: Type.Integer(),
        action: Type.Enum([...stepActions], { type: 'string' }),
        targetType: Type.String(),
        targetId: Type.String(),
        targetRef: Type.String(),
        reason: Type.String(),
        params: Free,
        status: Type.String(),
        attempts: Type.Integer(),
        result: nullable(Free),
        error: nullable(Type.String()),
      }),
    ),
    warnings: Type.Array(Type.String()),
    createdAt: Type.String({ format: 'date-time' }),
    finishedAt: nullable(Type.String({ format: 'date-time' })),
  },
  { title: 'OffboardingPlan' },
)

/**
 * Offboarding: POST a subject to get a plan (stored, or `dryRun` for a preview), then POST
 * `…/execute` to carry it out; executing again resumes an interrupted plan.
 */
export function registerOffboardingRoutes(
  app: TesseraApp,
  deps: { offboarding: Offboarding },
): void {
  const { offboarding } = deps
  app.post(
    '/v1/offboarding',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['offboarding'],
        summary: 'Plan the offboarding of a person, a team or a service',
        description:
          'Stores the plan (an unfinished plan for the same subject is returned instead) unless `dryRun` is true. Nothing is changed until the plan is executed.',
        security: bearerSecurity,
        body: Type.Object(
          {
            subject: Type.String({ minLength: 1, maxLength: 1000 }),
            subjectType: Type.Optional(
              Type.Enum([...offboardingSubjectTypes], { type: 'string', default: 'person' }),
            ),
            reassignTo: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
            dryRun: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: {
          200: OffboardingPlanSchema,
          201: OffboardingPlanSchema,
          ...problemResponses(400, 401, 403, 404, 415),
        },
      },
    },
    async (request, reply) => {
      const b = request.body
      const req = {
        subjectType: b.subjectType ?? 'person',
        subject: b.subject,
        ...(b.reassignTo ? { reassignTo: b.reassignTo } : {}),
      }
      if (b.dryRun) return offboarding.preview(req)
      const plan = await offboarding.plan(req, `api-token:${request.apiToken?.id ?? 'unknown'}`)
      return reply.code(201).send(plan)
    },
  )

  app.get(
    '/v1/offboarding/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['offboarding'],
        summary: 'An offboarding plan with the state of each step',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: { 200: OffboardingPlanSchema, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const plan = await offboarding.get(request.params.id)
      if (!plan) throw new TesseraError('TSR_NOT_FOUND', `no offboarding plan ${request.params.id}`)
      return plan
    },
  )

  app.post(
    '/v1/offboarding/:id/execute',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['offboarding'],
        summary: 'Execute (or resume) an offboarding plan; every step is audited',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: { 200: OffboardingPlanSchema, ...problemResponses(401, 403, 404, 500) },
      },
    },
    async (request) =>
      offboarding.execute(request.params.id, `api-token:${request.apiToken?.id ?? 'unknown'}`),
  )
}
