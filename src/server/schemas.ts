import { Type, type TEnum, type TSchema } from 'typebox'
import { identityKinds, tokenScopes } from '../store/schema.js'
import { linkTypes } from '../inventory/inventory-types.js'
import { nodeTypes } from '../inventory/observation.js'

/**
 * TypeBox schemas of the API's request and response bodies. They drive validation, serialisation
 * (fast-json-stringify drops any field not listed here, so nothing leaks by accident) and the
 * OpenAPI document.
 */

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
const DateTime = Type.String({ format: 'date-time' })
const Attributes = Type.Object({}, { additionalProperties: true, description: 'free-form jsonb' })
const stringEnum = <const T extends readonly string[]>(values: T): TEnum<[...T]> =>
  Type.Enum<[...T]>(values, { type: 'string' })
const NodeTypeSchema = stringEnum(nodeTypes)
export const IdentityKindSchema = stringEnum(identityKinds)
/** Graph link types: the stored edge types plus `has_grant`. */
export const EdgeTypeSchema = stringEnum(linkTypes)
export const ScopeSchema = stringEnum(tokenScopes)

/** RFC 9457 problem details, as every error response carries them. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'stable URI per error code' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    code: Type.String({ description: 'stable TSR_* error code' }),
    requestId: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
  },
  { additionalProperties: true, title: 'Problem' },
)

/** The error responses a route can give, for the OpenAPI document (bodies are problem+json). */
export function problemResponses(...statuses: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {}
  for (const status of statuses) {
    out[status] = {
      description: problemDescriptions[status] ?? 'error',
      content: { 'application/problem+json': { schema: ProblemSchema } },
    }
  }
  return out
}

const problemDescriptions: Record<number, string> = {
  400: 'invalid request (TSR_VALIDATION)',
  401: 'missing or invalid bearer token (TSR_AUTH_MISSING, TSR_AUTH_INVALID)',
  403: 'token lacks the scope (TSR_AUTH_SCOPE)',
  404: 'not found (TSR_NOT_FOUND)',
  409: 'conflict (TSR_CONFLICT)',
  413: 'body too large (TSR_PAYLOAD_TOO_LARGE)',
  415: 'unsupported media type (TSR_UNSUPPORTED_MEDIA_TYPE)',
  422: 'invalid observations (TSR_OBSERVATION_INVALID)',
  500: 'internal error (TSR_INTERNAL)',
  503: 'store unavailable (TSR_STORE_UNAVAILABLE)',
}

export const IdentitySummarySchema = Type.Object(
  {
    id: Type.String(),
    ref: Type.String(),
    kind: IdentityKindSchema,
    name: Type.String(),
    source: Type.String(),
    owner: nullable(Type.String()),
    createdBy: nullable(Type.String()),
    state: Type.String(),
    createdAt: nullable(DateTime),
    lastUsedAt: nullable(DateTime),
    lastSeenAt: DateTime,
    validFrom: DateTime,
    validTo: nullable(DateTime),
    attributes: Attributes,
  },
  { title: 'IdentitySummary' },
)

export const IdentityPageSchema = Type.Object({
  items: Type.Array(IdentitySummarySchema),
  nextCursor: Type.Optional(
    Type.String({ description: 'pass back as `cursor` for the next page' }),
  ),
})

const LocationViewSchema = Type.Object({
  id: Type.String(),
  locationType: Type.String(),
  repository: nullable(Type.String()),
  file: nullable(Type.String()),
  line: nullable(Type.Integer()),
  commit: nullable(Type.String()),
  host: nullable(Type.String()),
  path: nullable(Type.String()),
  source: Type.String(),
})

const CredentialViewSchema = Type.Object({
  id: Type.String(),
  ref: Type.String(),
  credentialType: Type.String(),
  fingerprint: nullable(Type.String()),
  preview: nullable(Type.String()),
  issuer: nullable(Type.String()),
  createdAt: nullable(DateTime),
  expiresAt: nullable(DateTime),
  lastRotatedAt: nullable(DateTime),
  lastUsedAt: nullable(DateTime),
  state: Type.String(),
  source: Type.String(),
  locations: Type.Array(LocationViewSchema),
})

const OwnerViewSchema = Type.Object({
  id: Type.String(),
  ref: Type.String(),
  ownerType: Type.Union([Type.Literal('person'), Type.Literal('team')]),
  name: Type.String(),
  email: nullable(Type.String()),
  status: Type.String(),
  team: nullable(Type.String()),
})

const GrantViewSchema = Type.Object({
  id: Type.String(),
  resource: Type.String(),
  resourceName: nullable(Type.String()),
  actions: Type.Array(Type.String()),
  via: nullable(Type.String()),
  source: Type.String(),
})

const UsageViewSchema = Type.Object({
  resource: Type.String(),
  action: Type.String(),
  count: Type.Number(),
  firstHour: DateTime,
  lastHour: DateTime,
})

const EdgeEndSchema = Type.Object({ type: NodeTypeSchema, id: Type.String(), ref: Type.String() })

export const EdgeViewSchema = Type.Object(
  {
    id: Type.String(),
    edgeType: EdgeTypeSchema,
    from: EdgeEndSchema,
    to: EdgeEndSchema,
    source: Type.String(),
  },
  { title: 'Edge' },
)

export const IdentityDetailSchema = Type.Object(
  {
    ...IdentitySummarySchema.properties,
    ownerDetail: nullable(OwnerViewSchema),
    credentials: Type.Array(CredentialViewSchema),
    grants: Type.Array(GrantViewSchema),
    usage: Type.Array(UsageViewSchema),
    edges: Type.Array(EdgeViewSchema),
  },
  { title: 'IdentityDetail' },
)

export const GraphSchema = Type.Object(
  {
    root: Type.String(),
    nodes: Type.Array(
      Type.Object({
        id: Type.String(),
        type: NodeTypeSchema,
        ref: Type.String(),
        label: Type.String(),
        depth: Type.Integer(),
        attributes: Attributes,
      }),
    ),
    edges: Type.Array(EdgeViewSchema),
    truncated: Type.Boolean(),
  },
  { title: 'Graph' },
)

export const IngestResultSchema = Type.Object(
  {
    received: Type.Integer(),
    inserted: Type.Integer(),
    changed: Type.Integer(),
    unchanged: Type.Integer(),
  },
  { title: 'IngestResult' },
)

export const RunCountsSchema = Type.Object(
  {
    seen: Type.Optional(Type.Integer({ minimum: 0 })),
    new: Type.Optional(Type.Integer({ minimum: 0 })),
    changed: Type.Optional(Type.Integer({ minimum: 0 })),
    unchanged: Type.Optional(Type.Integer({ minimum: 0 })),
    errors: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false, title: 'RunCounts', description: "the connector's statistics" },
)

export const RunSummarySchema = Type.Object(
  {
    id: Type.String(),
    source: Type.String(),
    scope: Type.Union([Type.Literal('full'), Type.Literal('delta')]),
    status: Type.Union([
      Type.Literal('running'),
      Type.Literal('succeeded'),
      Type.Literal('failed'),
    ]),
    startedAt: DateTime,
    finishedAt: Type.Optional(DateTime),
    closed: Type.Optional(Type.Integer()),
    counts: Type.Optional(RunCountsSchema),
  },
  { title: 'RunSummary' },
)

export const StatsSchema = Type.Object(
  {},
  {
    additionalProperties: Type.Integer(),
    title: 'Stats',
    description: 'count of current facts per table',
  },
)

export const ApiTokenViewSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    scopes: Type.Array(ScopeSchema),
    createdAt: DateTime,
    expiresAt: nullable(DateTime),
    lastUsedAt: nullable(DateTime),
    revokedAt: nullable(DateTime),
  },
  { title: 'ApiToken' },
)

export const CreatedApiTokenSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    scopes: Type.Array(ScopeSchema),
    expiresAt: nullable(DateTime),
    token: Type.String({ description: 'the bearer token; shown once, never again' }),
  },
  { title: 'CreatedApiToken' },
)

/** An ISO 8601 instant in a query string (`at`, `unusedSince`, `expiresBefore`). */
export const InstantQuery = (description: string) =>
  Type.String({ format: 'date-time', description })
