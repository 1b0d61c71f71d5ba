import { Type, type Static, type TEnum, type TSchema } from 'typebox'
import { edgeTypes, identityKinds, ownerStatuses } from '../store/schema.js'
import {
  credentialTypes,
  locationTypes,
  nodeTypes,
  type CredentialObservation,
  type EdgeObservation,
  type GrantObservation,
  type IdentityObservation,
  type LocationObservation,
  type Observation,
  type OwnerObservation,
  type ResourceObservation,
  type UsageObservation,
} from './observation.js'

/**
 * TypeBox schemas of the observation contract (`src/inventory/observation.ts`). They drive the
 * import parser (`observation-parse.ts`), the `POST /v1/observations` route and the published JSON
 * Schema (`docs/observation.schema.json`, written by `scripts/write-observation-schema.ts`).
 *
 * What a JSON Schema cannot say (dates within 1970..9999, a preview that hides the secret, usage
 * hours truncated to the hour) is checked by `parseObservation`.
 */

/** Limits of the contract, shared with the parser and documentation. */
export const observationLimits = {
  refMaxLength: 2048,
  nameMaxLength: 512,
  sourceMaxLength: 256,
  attributesMaxKeys: 64,
  previewMaxLength: 64,
  actionsMaxItems: 256,
  batchMaxObservations: 10_000,
  /** PostgreSQL `integer` columns (usage count, location line). */
  int32Max: 2_147_483_647,
} as const

/** Connector instance names: `aws:prod`, `github:acme`, `scanner`. */
export const sourcePattern = '^[A-Za-z0-9][A-Za-z0-9._:-]*$'
/** A keyed hash, optionally prefixed by its algorithm: `hmac-sha256:<hex>`, or bare hex. */
export const fingerprintPattern = '^(?:[a-z][a-z0-9-]{0,31}:)?[0-9A-Fa-f]{32,128}$'
/** A VCS commit id (git SHA-1 or SHA-256, possibly abbreviated). */
export const commitPattern = '^[0-9A-Fa-f]{7,64}$'
/** Lower-case type names such as `s3_bucket`, `k8s:namespace`. */
export const resourceTypePattern = '^[a-z0-9][a-z0-9._:-]*$'

const ref = (description: string) =>
  Type.String({ minLength: 1, maxLength: observationLimits.refMaxLength, description })
const name = (description: string) =>
  Type.String({ minLength: 1, maxLength: observationLimits.nameMaxLength, description })
const dateTime = (description: string) =>
  Type.String({ format: 'date-time', maxLength: 64, description })
const stringEnum = <const T extends readonly string[]>(
  values: T,
  description: string,
): TEnum<[...T]> => Type.Enum<[...T]>(values, { type: 'string', description })

/** Fields every observation carries, spread into each variant. */
const baseProperties = {
  source: Type.String({
    minLength: 1,
    maxLength: observationLimits.sourceMaxLength,
    pattern: sourcePattern,
    description: 'Connector instance that saw the fact, e.g. `aws:prod`, `github:acme`, `scanner`.',
  }),
  observedAt: Type.Optional(
    dateTime('When the fact was true (RFC 3339). Defaults to the time of ingestion.'),
  ),
  attributes: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), {
      maxProperties: observationLimits.attributesMaxKeys,
      description:
        'Free-form, source-specific details (at most 64 keys). Never put secret material here.',
    }),
  ),
}

const objectOptions = (title: string, description: string) => ({
  title,
  description,
  additionalProperties: false,
})

export const IdentityObservationSchema = Type.Object(
  {
    type: Type.Literal('identity'),
    ref: ref('External reference: ARN, SPIFFE ID, Kubernetes uid, app id…'),
    kind: stringEnum(identityKinds, 'What kind of non-human principal it is.'),
    name: name('Human-readable name in the platform’s own style.'),
    owner: Type.Optional(ref('Owner ref: a person’s email or a team slug.')),
    createdBy: Type.Optional(
      ref('Who or what created it: a person, pipeline or parent agent ref.'),
    ),
    state: Type.Optional(
      stringEnum(['active', 'disabled', 'deleted', 'quarantined'] as const, 'Lifecycle state.'),
    ),
    createdAt: Type.Optional(dateTime('When it was created.')),
    lastUsedAt: Type.Optional(dateTime('When it was last used, if known.')),
    ...baseProperties,
  },
  objectOptions('IdentityObservation', 'A non-human principal.'),
)

export const CredentialObservationSchema = Type.Object(
  {
    type: Type.Literal('credential'),
    ref: ref('Credential key, e.g. `aws-key:AKIA…` or `fp:<fingerprint>`.'),
    identity: Type.Optional(ref('Ref of the identity this credential authenticates, when known.')),
    credentialType: stringEnum(credentialTypes, 'What kind of secret or key it is.'),
    fingerprint: Type.Optional(
      Type.String({
        maxLength: 160,
        pattern: fingerprintPattern,
        description:
          'Keyed hash of the material, never the material: `hmac-sha256:<hex>` or 32..128 hex digits.',
      }),
    ),
    preview: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: observationLimits.previewMaxLength,
        description:
          'Redacted preview: at most the first and last 4 characters around a mask, e.g. `AKIA…X7Q2`.',
      }),
    ),
    issuer: Type.Optional(ref('Who issued it: a CA subject, an IdP, a cloud account…')),
    createdAt: Type.Optional(dateTime('When it was issued or created.')),
    expiresAt: Type.Optional(dateTime('When it expires; absent when it never does.')),
    lastRotatedAt: Type.Optional(dateTime('When it was last rotated.')),
    lastUsedAt: Type.Optional(dateTime('When it was last used, if known.')),
    state: Type.Optional(
      stringEnum(['active', 'inactive', 'revoked', 'expired'] as const, 'Lifecycle state.'),
    ),
    ...baseProperties,
  },
  objectOptions('CredentialObservation', 'A key, certificate, token or password.'),
)

export const LocationObservationSchema = Type.Object(
  {
    type: Type.Literal('location'),
    credential: ref('Ref of the credential found there.'),
    locationType: stringEnum(locationTypes, 'Where it was found.'),
    repository: Type.Optional(ref('Repository, e.g. `github.com/acme/payments`.')),
    file: Type.Optional(ref('File path (in the repository or on the host).')),
    line: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: observationLimits.int32Max,
        description: '1-based line.',
      }),
    ),
    commit: Type.Optional(
      Type.String({ pattern: commitPattern, description: 'Commit id (hex, 7..64 digits).' }),
    ),
    host: Type.Optional(
      Type.String({ minLength: 1, maxLength: 512, description: 'Host name or address.' }),
    ),
    path: Type.Optional(
      ref('k8s `namespace/name#key`, Vault path, environment variable name, URL…'),
    ),
    ...baseProperties,
  },
  objectOptions('LocationObservation', 'A place where a credential was found.'),
)

export const OwnerObservationSchema = Type.Object(
  {
    type: Type.Literal('owner'),
    ref: ref('Owner ref: a person’s email or a team slug.'),
    ownerType: stringEnum(['person', 'team'] as const, 'A person or a team.'),
    name: name('Display name.'),
    email: Type.Optional(Type.String({ format: 'email', maxLength: 320, description: 'E-mail.' })),
    status: Type.Optional(stringEnum(ownerStatuses, 'Departed people are kept, never deleted.')),
    team: Type.Optional(ref('For a person, the ref of the team they belong to.')),
    ...baseProperties,
  },
  objectOptions('OwnerObservation', 'A person or team accountable for identities.'),
)

export const ResourceObservationSchema = Type.Object(
  {
    type: Type.Literal('resource'),
    ref: ref('ARN, URI or other unique reference.'),
    resourceType: Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: resourceTypePattern,
      description: 'Lower-case type, e.g. `s3_bucket`, `database`, `k8s_namespace`.',
    }),
    name: name('Display name.'),
    environment: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: 'e.g. `prod`, `staging`.' }),
    ),
    ...baseProperties,
  },
  objectOptions('ResourceObservation', 'Something identities act on.'),
)

export const GrantObservationSchema = Type.Object(
  {
    type: Type.Literal('grant'),
    identity: ref('Ref of the identity holding the grant.'),
    resource: ref('Resource ref; `*` for every resource.'),
    actions: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
      minItems: 1,
      maxItems: observationLimits.actionsMaxItems,
      description: 'Allowed actions, e.g. `s3:GetObject`; `*` for all.',
    }),
    via: Type.Optional(ref('Policy, role or binding that grants it.')),
    ...baseProperties,
  },
  objectOptions('GrantObservation', 'What an identity is allowed to do on a resource.'),
)

export const UsageObservationSchema = Type.Object(
  {
    type: Type.Literal('usage'),
    identity: ref('Ref of the identity that acted.'),
    resource: ref('Ref of the resource acted on.'),
    action: Type.String({ minLength: 1, maxLength: 256, description: 'Action performed.' }),
    hour: dateTime('Start of the hour; other instants are truncated to the hour.'),
    count: Type.Integer({
      minimum: 0,
      maximum: observationLimits.int32Max,
      description: 'How many times in that hour.',
    }),
    ...baseProperties,
  },
  objectOptions('UsageObservation', 'Observed use, aggregated per hour.'),
)

const nodeRef = (description: string) =>
  Type.Object(
    {
      type: stringEnum(nodeTypes, 'Node type.'),
      ref: ref('Ref of the node (for a location: the inventory’s location key).'),
    },
    { additionalProperties: false, description },
  )

export const EdgeObservationSchema = Type.Object(
  {
    type: Type.Literal('edge'),
    edgeType: stringEnum(edgeTypes, 'Relation type.'),
    from: nodeRef('Start node.'),
    to: nodeRef('End node.'),
    ...baseProperties,
  },
  objectOptions('EdgeObservation', 'A typed relation between two nodes of the graph.'),
)

/** One schema per `type`, in the union's order. */
export const observationVariantSchemas = {
  identity: IdentityObservationSchema,
  credential: CredentialObservationSchema,
  location: LocationObservationSchema,
  owner: OwnerObservationSchema,
  resource: ResourceObservationSchema,
  grant: GrantObservationSchema,
  usage: UsageObservationSchema,
  edge: EdgeObservationSchema,
} as const satisfies Record<Observation['type'], TSchema>

export type ObservationType = keyof typeof observationVariantSchemas
export const observationTypes = Object.keys(observationVariantSchemas) as ObservationType[]

/** The union, discriminated by `type`. */
export const ObservationSchema = Type.Union(
  [
    IdentityObservationSchema,
    CredentialObservationSchema,
    LocationObservationSchema,
    OwnerObservationSchema,
    ResourceObservationSchema,
    GrantObservationSchema,
    UsageObservationSchema,
    EdgeObservationSchema,
  ],
  {
    title: 'Observation',
    description: 'One normalised fact a connector or an import file saw, with its source.',
  },
)

/** Body of `POST /v1/observations`. */
export const ObservationBatchSchema = Type.Object(
  {
    observations: Type.Array(ObservationSchema, {
      minItems: 1,
      maxItems: observationLimits.batchMaxObservations,
      description: '1..10,000 observations.',
    }),
    runs: Type.Optional(
      Type.Record(Type.String(), Type.String({ minLength: 1, maxLength: 256 }), {
        description: 'Discovery run id per source (from startRun), so a full run can close facts.',
      }),
    ),
  },
  {
    title: 'ObservationBatch',
    description: 'A batch of observations for `POST /v1/observations`.',
    additionalProperties: false,
  },
)
export type ObservationBatch = Static<typeof ObservationBatchSchema>

// Compile-time proof that the schemas and the TypeScript union describe the same values: each
// direction must be assignable, for the union and for every variant.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type Assert<T extends true> = T
export type ObservationSchemaMatchesUnion = [
  Assert<Same<Static<typeof ObservationSchema>, Observation>>,
  Assert<Same<Static<typeof IdentityObservationSchema>, IdentityObservation>>,
  Assert<Same<Static<typeof CredentialObservationSchema>, CredentialObservation>>,
  Assert<Same<Static<typeof LocationObservationSchema>, LocationObservation>>,
  Assert<Same<Static<typeof OwnerObservationSchema>, OwnerObservation>>,
  Assert<Same<Static<typeof ResourceObservationSchema>, ResourceObservation>>,
  Assert<Same<Static<typeof GrantObservationSchema>, GrantObservation>>,
  Assert<Same<Static<typeof UsageObservationSchema>, UsageObservation>>,
  Assert<Same<Static<typeof EdgeObservationSchema>, EdgeObservation>>,
  Assert<Same<ObservationBatch['observations'][number], Observation>>,
]
