import { Type, type TSchema } from 'typebox'
import { TesseraError } from '../../errors.js'
import type { Posture } from '../../posture/index.js'
import { severities } from '../../store/schema.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
const SeveritySchema = Type.Enum([...severities], { type: 'string' })
const StatusSchema = Type.Enum(['open', 'accepted', 'resolved'], { type: 'string' })
const DateTime = Type.String({ format: 'date-time' })

export const FindingSchema = Type.Object(
  {
    id: Type.String(),
    rule: Type.String(),
    severity: SeveritySchema,
    subjectType: Type.String(),
    subjectId: nullable(Type.String()),
    subjectRef: Type.String(),
    evidence: Type.Object({}, { additionalProperties: true, description: 'what the rule saw' }),
    owner: nullable(Type.String()),
    status: StatusSchema,
    acceptedReason: nullable(Type.String()),
    acceptedUntil: nullable(DateTime),
    firstSeenAt: DateTime,
    lastSeenAt: DateTime,
    resolvedAt: nullable(DateTime),
  },
  { title: 'Finding' },
)

const RunResultSchema = Type.Object(
  {
    startedAt: DateTime,
    rules: Type.Array(
      Type.Object({
        rule: Type.String(),
        severity: SeveritySchema,
        found: Type.Integer(),
        opened: Type.Integer(),
        updated: Type.Integer(),
        resolved: Type.Integer(),
        ms: Type.Integer(),
      }),
    ),
    riskScores: Type.Integer(),
    ms: Type.Integer(),
  },
  { title: 'PostureRunResult' },
)

const RiskScoreSchema = Type.Object(
  {
    identityId: Type.String(),
    identityRef: Type.String(),
    owner: nullable(Type.String()),
    score: Type.Number(),
    findings: Type.Integer(),
    maxSeverity: SeveritySchema,
    blastRadius: Type.Integer(),
    computedAt: DateTime,
  },
  { title: 'RiskScore' },
)

const RuleSchema = Type.Object(
  {
    id: Type.String(),
    severity: SeveritySchema,
    title: Type.String(),
    description: Type.String(),
    remediation: Type.String(),
    thresholds: Type.Record(
      Type.String(),
      Type.Object({ default: Type.Number(), value: Type.Number(), description: Type.String() }),
    ),
  },
  { title: 'PostureRule' },
)

/** Posture findings: list, evaluate the rules, accept a finding; rules and risk scores. */
export function registerFindingRoutes(app: TesseraApp, deps: { posture: Posture }): void {
  const { posture } = deps
  app.get(
    '/v1/findings',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['findings'],
        summary: 'List findings, most severe first',
        security: bearerSecurity,
        querystring: Type.Object(
          {
            rule: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            owner: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
            severity: Type.Optional(SeveritySchema),
            status: Type.Optional(StatusSchema),
            subject: Type.Optional(
              Type.String({ minLength: 1, maxLength: 1000, description: 'subject id or ref' }),
            ),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
            cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(FindingSchema),
            nextCursor: Type.Optional(Type.String()),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => posture.findings.list(request.query),
  )

  app.get(
    '/v1/findings/rules',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['findings'],
        summary: 'The posture rules with their severities and thresholds',
        security: bearerSecurity,
        response: {
          200: Type.Object({ items: Type.Array(RuleSchema) }),
          ...problemResponses(401, 403),
        },
      },
    },
    async () => ({ items: posture.rules() }),
  )

  app.get(
    '/v1/findings/risk',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['findings'],
        summary: 'Identities by risk score (findings weighted by severity and blast radius)',
        security: bearerSecurity,
        querystring: Type.Object(
          {
            owner: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(RiskScoreSchema) }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => ({ items: await posture.riskScores(request.query) }),
  )

  app.get(
    '/v1/findings/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['findings'],
        summary: 'One finding',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: { 200: FindingSchema, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const f = await posture.findings.get(request.params.id)
      if (!f)
        throw new TesseraError('TSR_NOT_FOUND', `no finding ${JSON.stringify(request.params.id)}`)
      return f
    },
  )

  app.post(
    '/v1/findings/run',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['findings'],
        summary:
          'Evaluate the posture rules now (all, or the ones named) and recompute risk scores',
        security: bearerSecurity,
        body: Type.Optional(
          Type.Object(
            {
              rules: Type.Optional(
                Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 100 }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        response: { 200: RunResultSchema, ...problemResponses(400, 401, 403, 415) },
      },
    },
    async (request) => posture.run(request.body?.rules ? { rules: request.body.rules } : {}),
  )

  app.post(
    '/v1/findings/:id/accept',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['findings'],
        summary: 'Accept a finding with a reason until an expiry; it reopens by itself afterwards',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
        body: Type.Object(
          {
            reason: Type.String({ minLength: 1, maxLength: 500 }),
            until: Type.String({ format: 'date-time' }),
          },
          { additionalProperties: false },
        ),
        response: { 200: FindingSchema, ...problemResponses(400, 401, 403, 404, 409, 415) },
      },
    },
    async (request) =>
      posture.findings.accept(request.params.id, {
        reason: request.body.reason,
        until: new Date(request.body.until),
        by: `api-token:${request.apiToken?.id ?? 'unknown'}`,
      }),
  )
}
