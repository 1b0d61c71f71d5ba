import { Type } from 'typebox'
import type { Owners } from '../../inventory/owners/owners.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'
import { TesseraError } from '../../errors.js'

const Loose = (title: string) => Type.Object({}, { additionalProperties: true, title })

/** People and teams, ownership of identities, CODEOWNERS files (docs/ownership.md). */
export function registerOwnerRoutes(app: TesseraApp, deps: { owners: Owners }): void {
  const tags = ['owners']
  app.get(
    '/v1/owners',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        summary: 'List people and teams',
        security: bearerSecurity,
        querystring: Type.Object(
          {
            type: Type.Optional(Type.Enum(['person', 'team'], { type: 'string' })),
            status: Type.Optional(
              Type.Enum(['active', 'departed', 'suspended'], { type: 'string' }),
            ),
            team: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            after: Type.Optional(
              Type.String({
                minLength: 1,
                maxLength: 1024,
                description: 'nextAfter of the previous page',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Loose('OwnerPage'), ...problemResponses(400, 401, 403) },
      },
    },
    async (req) => deps.owners.list(req.query),
  )
  app.get(
    '/v1/owners/:ref',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        summary: 'One person or team, by ref or id',
        security: bearerSecurity,
        params: Type.Object({ ref: Type.String({ minLength: 1, maxLength: 1024 }) }),
        response: { 200: Loose('Owner'), ...problemResponses(401, 403, 404) },
      },
    },
    async (req) => {
      const o = await deps.owners.get(req.params.ref)
      if (!o) throw new TesseraError('TSR_NOT_FOUND', `no owner ${req.params.ref}`)
      return o
    },
  )
  app.post(
    '/v1/owners/import',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        summary: 'Import people and teams from SCIM JSON or CSV text',
        security: bearerSecurity,
        body: Type.Object(
          {
            content: Type.String({ minLength: 1, maxLength: 64 * 1024 * 1024 }),
            format: Type.Optional(Type.Enum(['scim', 'csv', 'auto'], { type: 'string' })),
            source: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Loose('OwnerImportResult'), ...problemResponses(400, 401, 403, 422) },
      },
    },
    async (req) =>
      deps.owners.importText(req.body.content, {
        ...(req.body.format ? { format: req.body.format } : {}),
        ...(req.body.source ? { source: req.body.source } : {}),
      }),
  )
  app.get(
    '/v1/ownership',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        summary: "An identity's owner, the evidence and the confidence; orphaned or not",
        security: bearerSecurity,
        querystring: Type.Object(
          {
            identity: Type.String({
              minLength: 1,
              maxLength: 2048,
              description: 'identity id or ref',
            }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Loose('Ownership'), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const o = await deps.owners.ownership(req.query.identity)
      if (!o) throw new TesseraError('TSR_NOT_FOUND', `no identity ${req.query.identity}`)
      return o
    },
  )
  app.post(
    '/v1/ownership',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        summary: 'Assign an owner explicitly (the previous assignment is kept as history)',
        security: bearerSecurity,
        body: Type.Object(
          {
            identity: Type.String({ minLength: 1, maxLength: 2048 }),
            owner: Type.String({ minLength: 1, maxLength: 512 }),
            reason: Type.Optional(Type.String({ maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Loose('OwnerAssignment'), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (req) =>
      deps.owners.assign(req.body.identity, req.body.owner, {
        by: `api-token:${req.apiToken?.id ?? 'unknown'}`,
        ...(req.body.reason !== undefined ? { reason: req.body.reason } : {}),
      }),
  )
  app.put(
    '/v1/codeowners',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        summary: "Store a repository's CODEOWNERS file for ownership resolution",
        security: bearerSecurity,
        body: Type.Object(
          {
            repository: Type.String({ minLength: 1, maxLength: 1024 }),
            content: Type.String({ maxLength: 512 * 1024 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ repository: Type.String() }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (req, reply) => {
      await deps.owners.setCodeowners(req.body.repository, req.body.content)
      return reply.send({ repository: req.body.repository })
    },
  )
}
