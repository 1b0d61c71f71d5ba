import { Type } from 'typebox'
import { TesseraError } from '../../errors.js'
import { maxPolicyBytes, type AuthzService } from '../../policy/index.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const PolicyVersionSchema = Type.Object(
  {
    name: Type.String(),
    version: Type.Integer(),
    active: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    createdBy: Type.Union([Type.String(), Type.Null()]),
  },
  { title: 'CedarPolicyVersion' },
)

const PolicySchema = Type.Object(
  {
    name: Type.String(),
    version: Type.Integer(),
    active: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    createdBy: Type.Union([Type.String(), Type.Null()]),
    body: Type.String(),
  },
  { title: 'CedarPolicy' },
)

const ProblemItem = Type.Object({
  policy: Type.Optional(Type.String()),
  message: Type.String(),
  help: Type.Optional(Type.String()),
  line: Type.Optional(Type.Integer()),
  column: Type.Optional(Type.Integer()),
  snippet: Type.Optional(Type.String()),
})

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) })
const Body = Type.String({ minLength: 1, maxLength: maxPolicyBytes })

/** Cedar policy administration: versions, validation against the graph's schema, activation. */
export function registerCedarPolicyRoutes(app: TesseraApp, deps: { authz: AuthzService }): void {
  const { policies } = deps.authz
  const actor = (id: string | undefined) => `api-token:${id ?? 'unknown'}`

  app.get(
    '/v1/authz/policies',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['authorization'],
        summary: 'Every version of every Cedar policy, with which one is active',
        security: bearerSecurity,
        response: {
          200: Type.Object({ items: Type.Array(PolicyVersionSchema) }),
          ...problemResponses(401, 403),
        },
      },
    },
    async () => ({ items: await policies.list() }),
  )

  app.post(
    '/v1/authz/policies',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['authorization'],
        summary:
          'Store a new version of a Cedar policy (parse-checked; `activate` validates and activates it)',
        security: bearerSecurity,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            body: Body,
            activate: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 201: PolicySchema, ...problemResponses(400, 401, 403, 415, 422) },
      },
    },
    async (request, reply) => {
      const created = await policies.add({
        name: request.body.name,
        body: request.body.body,
        createdBy: actor(request.apiToken?.id),
        ...(request.body.activate ? { activate: true } : {}),
      })
      return reply.code(201).send(created)
    },
  )

  app.post(
    '/v1/authz/policies/validate',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['authorization'],
        summary: "Parse and validate a Cedar text against the graph's schema, without storing it",
        security: bearerSecurity,
        body: Type.Object(
          { body: Body, name: Type.Optional(Type.String({ maxLength: 100 })) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ ok: Type.Boolean(), problems: Type.Array(ProblemItem) }),
          ...problemResponses(400, 401, 403, 415),
        },
      },
    },
    async (request) => policies.validate(request.body.body, request.body.name),
  )

  app.get(
    '/v1/authz/policies/:name',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['authorization'],
        summary: 'One Cedar policy: the given version, else the active one, else the latest',
        security: bearerSecurity,
        params: NameParams,
        querystring: Type.Object(
          { version: Type.Optional(Type.Integer({ minimum: 1 })) },
          { additionalProperties: false },
        ),
        response: { 200: PolicySchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const found = await policies.show(request.params.name, request.query.version)
      if (!found) throw new TesseraError('TSR_NOT_FOUND', `no Cedar policy ${request.params.name}`)
      return found
    },
  )

  app.post(
    '/v1/authz/policies/:name/activate',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['authorization'],
        summary:
          "Validate a version (default the latest) against the graph's schema and activate it",
        security: bearerSecurity,
        params: NameParams,
        body: Type.Optional(
          Type.Object(
            { version: Type.Optional(Type.Integer({ minimum: 1 })) },
            { additionalProperties: false },
          ),
        ),
        response: { 200: PolicySchema, ...problemResponses(400, 401, 403, 404, 415, 422) },
      },
    },
    async (request) =>
      policies.activate(request.params.name, request.body?.version, actor(request.apiToken?.id)),
  )

  app.post(
    '/v1/authz/policies/:name/deactivate',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['authorization'],
        summary: 'Leave the policy with no active version',
        security: bearerSecurity,
        params: NameParams,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await policies.deactivate(request.params.name, actor(request.apiToken?.id))
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/v1/authz/schema',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['authorization'],
        summary:
          'The Cedar schema (JSON form) derived from the graph, that policies validate against',
        security: bearerSecurity,
        response: {
          200: Type.Object({}, { additionalProperties: true }),
          ...problemResponses(401, 403),
        },
      },
    },
    async () => deps.authz.schema(),
  )
}
