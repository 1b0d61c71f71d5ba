import { Type } from 'typebox'
import type { FindingReporter } from '../../posture/finding-types.js'
import type { Governance } from '../../policy/governance/governance.js'
import { TesseraError } from '../../errors.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const Loose = (title: string) => Type.Object({}, { additionalProperties: true, title })
const PolicyBody = Type.Object(
  {
    body: Type.String({
      minLength: 1,
      maxLength: 256 * 1024,
      description: 'tessera.policy.yaml text',
    }),
    file: Type.Optional(
      Type.String({ maxLength: 200, description: 'name shown in error positions' }),
    ),
  },
  { additionalProperties: false },
)

/** Governance as code (docs/governance-policy.md): versions, apply, dry run, diff, evaluation. */
export function registerGovernanceRoutes(
  app: TesseraApp,
  deps: { governance: Governance; findings?: FindingReporter },
): void {
  const tags = ['governance']
  const g = deps.governance
  app.get(
    '/v1/policy',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        summary: 'The active governance policy version',
        security: bearerSecurity,
        response: { 200: Loose('PolicyVersion'), ...problemResponses(401, 403, 404) },
      },
    },
    async () => {
      const a = await g.active()
      if (!a) throw new TesseraError('TSR_NOT_FOUND', 'no governance policy applied yet')
      return a
    },
  )
  app.get(
    '/v1/policy/versions',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        summary: 'Every governance policy version, newest first',
        security: bearerSecurity,
        response: { 200: Loose('PolicyHistory'), ...problemResponses(401, 403) },
      },
    },
    async () => ({ items: await g.history() }),
  )
  app.get(
    '/v1/policy/versions/:version',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        summary: 'One governance policy version',
        security: bearerSecurity,
        params: Type.Object({ version: Type.Integer({ minimum: 1 }) }),
        response: { 200: Loose('PolicyVersion'), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const v = await g.get(req.params.version)
      if (!v) throw new TesseraError('TSR_NOT_FOUND', `no policy version ${req.params.version}`)
      return v
    },
  )
  app.get(
    '/v1/policy/diff',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        summary: 'What changed between two policy versions, path by path',
        security: bearerSecurity,
        querystring: Type.Object(
          { from: Type.Integer({ minimum: 1 }), to: Type.Integer({ minimum: 1 }) },
          { additionalProperties: false },
        ),
        response: { 200: Loose('PolicyDiff'), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (req) => ({
      from: req.query.from,
      to: req.query.to,
      changes: await g.diff(req.query.from, req.query.to),
    }),
  )
  app.post(
    '/v1/policy',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        summary: 'Apply a governance policy: validated, stored as a new version, made active',
        security: bearerSecurity,
        body: PolicyBody,
        response: { 200: Loose('PolicyApplied'), ...problemResponses(400, 401, 403, 422) },
      },
    },
    async (req) =>
      g.apply(req.body.body, {
        by: `api-token:${req.apiToken?.id ?? 'unknown'}`,
        ...(req.body.file ? { file: req.body.file } : {}),
      }),
  )
  app.post(
    '/v1/policy/test',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        summary:
          'Dry run: what a policy would newly flag over the current inventory, against the active one',
        security: bearerSecurity,
        body: PolicyBody,
        response: { 200: Loose('PolicyTestResult'), ...problemResponses(400, 401, 403, 422) },
      },
    },
    async (req) => g.test(req.body.body, req.body.file),
  )
  app.post(
    '/v1/policy/evaluate',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        summary: 'Evaluate the active policy over the inventory and record policy.* findings',
        security: bearerSecurity,
        response: { 200: Loose('PolicyEvaluation'), ...problemResponses(401, 403) },
      },
    },
    async () => {
      if (deps.findings) return { reported: await g.report(deps.findings) }
      const found = await g.evaluate()
      return { counts: Object.fromEntries([...found].map(([rule, list]) => [rule, list.length])) }
    },
  )
}
