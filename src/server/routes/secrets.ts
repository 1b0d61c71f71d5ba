import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { TesseraError } from '../../errors.js'
import type { SecretsService } from '../../lifecycle/rotation/secrets-service.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Optional(t)

export const SecretSchema = Type.Object(
  {
    name: Type.String(),
    rotator: Type.String(),
    config: Type.Object(
      {},
      {
        additionalProperties: true,
        description: 'The rotator configuration; secret fields read `[sealed]`',
      },
    ),
    consumers: Type.Array(Type.String(), { description: 'SPIFFE IDs allowed to read the value' }),
    periodSeconds: Type.Integer(),
    window: Nullable(Type.String({ description: 'daily UTC window HH:MM-HH:MM' })),
    graceSeconds: Type.Integer(),
    version: Type.Integer(),
    fingerprint: Nullable(Type.String({ description: 'keyed HMAC of the value, never the value' })),
    previousFingerprint: Nullable(Type.String()),
    previousValidUntil: Nullable(Type.String({ format: 'date-time' })),
    credentialRef: Type.String(),
    identityRef: Nullable(Type.String()),
    createdAt: Type.String({ format: 'date-time' }),
    createdBy: Nullable(Type.String()),
    lastRotatedAt: Nullable(Type.String({ format: 'date-time' })),
    nextRotationAt: Type.String({ format: 'date-time' }),
    lastError: Nullable(Type.String()),
    consecutiveFailures: Type.Integer(),
    kekId: Type.String(),
  },
  { title: 'ManagedSecret' },
)

const RotationSchema = Type.Object(
  {
    id: Type.String(),
    secretName: Type.String(),
    state: Type.String(),
    reason: Type.String(),
    fromVersion: Type.Integer(),
    newFingerprint: Type.Optional(Type.String()),
    graceUntil: Type.Optional(Type.String({ format: 'date-time' })),
    attempts: Type.Integer(),
    nextAttemptAt: Type.Optional(Type.String({ format: 'date-time' })),
    error: Type.Optional(Type.String()),
    startedAt: Type.String({ format: 'date-time' }),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { title: 'Rotation' },
)

const RotationWithStepsSchema = Type.Intersect([
  RotationSchema,
  Type.Object({
    steps: Type.Array(
      Type.Object({
        state: Type.String(),
        at: Type.String({ format: 'date-time' }),
        detail: Type.Object({}, { additionalProperties: true }),
      }),
    ),
  }),
])

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) })

function need(secrets: SecretsService | undefined): SecretsService {
  if (!secrets) {
    throw new TesseraError(
      'TSR_CONTROL_UNAVAILABLE',
      'managed secrets are not enabled on this server (no key-encryption key)',
    )
  }
  return secrets
}

/**
 * Managed secrets (docs/rotation.md). No response ever carries a value: values reach workloads
 * only through their node agent (`GET /v1/agent/secrets/{name}`, agent proof).
 */
export function registerSecretRoutes(app: TesseraApp, deps: { secrets?: SecretsService }): void {
  const actor = (request: FastifyRequest) => `api-token:${request.apiToken?.id ?? 'unknown'}`
  app.post(
    '/v1/secrets',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['secrets'],
        summary: 'Put a credential under management (value sealed under the KEK)',
        description:
          '`value` is the credential consumers hold now; without it the first rotation is due at once. The response never includes it.',
        security: bearerSecurity,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 128 }),
            rotator: Type.String({ maxLength: 32 }),
            config: Type.Object({}, { additionalProperties: true }),
            consumers: Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 1000 }),
            periodSeconds: Type.Integer({ minimum: 1 }),
            window: Type.Optional(Type.String({ maxLength: 11 })),
            graceSeconds: Type.Integer({ minimum: 0 }),
            value: Type.Optional(Type.String({ minLength: 1, maxLength: 65_536 })),
            fromCredential: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: SecretSchema, ...problemResponses(400, 401, 403, 404, 409, 415, 503) },
      },
    },
    async (request, reply) => {
      const view = await need(deps.secrets).manage({ ...request.body, createdBy: actor(request) })
      request.log.info({ secret: view.name, rotator: view.rotator }, 'secret under management')
      return reply.code(201).send(view)
    },
  )

  app.get(
    '/v1/secrets',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['secrets'],
        summary: 'Managed secrets (never their values)',
        security: bearerSecurity,
        response: {
          200: Type.Object({ items: Type.Array(SecretSchema) }),
          ...problemResponses(401, 403, 503),
        },
      },
    },
    async () => ({ items: await need(deps.secrets).list() }),
  )

  app.get(
    '/v1/secrets/:name',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['secrets'],
        summary: 'A managed secret with its rotation history (newest first, 50 at most)',
        security: bearerSecurity,
        params: NameParams,
        response: {
          200: Type.Intersect([
            SecretSchema,
            Type.Object({ rotations: Type.Array(RotationWithStepsSchema) }),
          ]),
          ...problemResponses(401, 403, 404, 503),
        },
      },
    },
    async (request) => need(deps.secrets).show(request.params.name),
  )

  app.post(
    '/v1/secrets/:name/rotate',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['secrets'],
        summary: 'Rotate now (or resume the open rotation); answers once it waits for the grace',
        security: bearerSecurity,
        params: NameParams,
        response: { 200: RotationSchema, ...problemResponses(401, 403, 404, 409, 502, 503) },
      },
    },
    async (request) => need(deps.secrets).rotate(request.params.name, actor(request)),
  )

  app.delete(
    '/v1/secrets/:name',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['secrets'],
        summary: 'Stop managing a secret (the credential itself is left as it is)',
        security: bearerSecurity,
        params: NameParams,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      await need(deps.secrets).unmanage(request.params.name)
      return reply.code(204).send(null)
    },
  )
}

/**
 * The agent's side (registered inside the agent API scope, so the per-request agent proof is
 * checked first): the value of a managed secret for one SPIFFE ID the agent serves, only when that
 * ID is one of the secret's consumers.
 */
export function registerAgentSecretRoute(
  scope: TesseraApp,
  deps: {
    secrets?: Pick<SecretsService, 'deliver'>
    /** The SPIFFE IDs of the entries the authenticated agent may serve now. */
    servedSpiffeIds(request: FastifyRequest): ReadonlySet<string>
  },
): void {
  scope.get(
    '/v1/agent/secrets/:name',
    {
      schema: {
        tags: ['agent-api'],
        summary: "A managed secret's current value, for a workload SPIFFE ID the agent serves",
        security: [{ agentProof: [] }],
        params: NameParams,
        querystring: Type.Object(
          { spiffeId: Type.String({ minLength: 1, maxLength: 2048 }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            name: Type.String(),
            spiffeId: Type.String(),
            version: Type.Integer(),
            value: Type.String({ description: 'the secret value (only ever in this response)' }),
            rotatedAt: Type.Optional(Type.String({ format: 'date-time' })),
            previousValidUntil: Type.Optional(Type.String({ format: 'date-time' })),
          }),
          ...problemResponses(400, 401, 403, 404, 503),
        },
      },
    },
    async (request, reply) => {
      const { spiffeId } = request.query
      if (!deps.servedSpiffeIds(request).has(spiffeId)) {
        throw new TesseraError('TSR_SECRET_DENIED', `this agent serves no entry for ${spiffeId}`)
      }
      const delivered = await need(deps.secrets as SecretsService).deliver(request.params.name, [
        spiffeId,
      ])
      void reply.header('cache-control', 'no-store')
      return delivered
    },
  )
}
