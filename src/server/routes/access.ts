import { Type } from 'typebox'
import type { AccessQueries } from '../../audit/access-queries.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) =>
  Type.Union([t, Type.Null()])
const DateTime = Type.String({ format: 'date-time' })

const CredentialAtSchema = Type.Object({
  kind: Type.Union([Type.Literal('credential'), Type.Literal('svid')]),
  ref: Type.String(),
  type: Type.String(),
  validFrom: DateTime,
  validTo: Nullable(DateTime),
})

const GrantAtSchema = Type.Object({
  identityId: Type.String(),
  identityRef: Type.String(),
  identityName: Nullable(Type.String()),
  identityKind: Nullable(Type.String()),
  resourceRef: Type.String(),
  actions: Type.Array(Type.String()),
  via: Nullable(Type.String()),
  policy: Nullable(Type.Object({ name: Type.String(), version: Type.Integer() })),
  grantValidFrom: DateTime,
  grantValidTo: Nullable(DateTime),
  credentials: Type.Array(CredentialAtSchema),
})

export const WhoCouldSchema = Type.Object(
  {
    resource: Type.String(),
    at: DateTime,
    could: Type.Array(GrantAtSchema),
    blocked: Type.Array(
      Type.Intersect([
        GrantAtSchema,
        Type.Object({
          reason: Type.Union([
            Type.Literal('no-identity'),
            Type.Literal('identity-inactive'),
            Type.Literal('no-credential'),
          ]),
        }),
      ]),
    ),
  },
  { title: 'WhoCould' },
)

export const WhoDidSchema = Type.Object(
  {
    resource: Type.String(),
    from: DateTime,
    to: DateTime,
    identities: Type.Array(
      Type.Object({
        identityRef: Type.String(),
        identityId: Type.String(),
        actions: Type.Array(Type.String()),
        decisions: Type.Integer(),
        denied: Type.Integer(),
        firstAt: Nullable(DateTime),
        lastAt: Nullable(DateTime),
        usage: Type.Array(
          Type.Object({
            action: Type.String(),
            hour: DateTime,
            count: Type.Integer(),
            source: Type.String(),
          }),
        ),
      }),
    ),
  },
  { title: 'WhoDid' },
)

export const ReachSchema = Type.Object(
  {
    identity: Type.String(),
    identityId: Type.String(),
    at: DateTime,
    state: Nullable(Type.String()),
    usable: Type.Boolean(),
    grants: Type.Array(GrantAtSchema),
    credentials: Type.Array(CredentialAtSchema),
  },
  { title: 'Reach' },
)

const Ref = Type.String({ minLength: 1, maxLength: 2048 })

/** Temporal access queries (docs/access-queries.md); read scope. */
export function registerAccessRoutes(app: TesseraApp, deps: { access: AccessQueries }): void {
  app.get(
    '/v1/access/who-could',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['access'],
        summary:
          'Who could access a resource at an instant: grants, identities and credentials valid then',
        security: bearerSecurity,
        querystring: Type.Object({ resource: Ref, at: DateTime }, { additionalProperties: false }),
        response: { 200: WhoCouldSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => deps.access.whoCould(request.query.resource, new Date(request.query.at)),
  )

  app.get(
    '/v1/access/who-did',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['access'],
        summary: 'Who did access a resource in [from, to): allowed decisions and usage',
        security: bearerSecurity,
        querystring: Type.Object(
          { resource: Ref, from: DateTime, to: DateTime },
          { additionalProperties: false },
        ),
        response: { 200: WhoDidSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) =>
      deps.access.whoDid(
        request.query.resource,
        new Date(request.query.from),
        new Date(request.query.to),
      ),
  )

  app.get(
    '/v1/access/reach',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['access'],
        summary: 'What an identity (ref or id) could reach at an instant',
        security: bearerSecurity,
        querystring: Type.Object({ identity: Ref, at: DateTime }, { additionalProperties: false }),
        response: { 200: ReachSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => deps.access.reach(request.query.identity, new Date(request.query.at)),
  )
}
