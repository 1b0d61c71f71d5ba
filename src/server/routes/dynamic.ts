import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { TesseraError } from '../../errors.js'
import type { DynamicCredentials } from '../../lifecycle/dynamic/dynamic-credentials.js'
import type {
  AuthenticatedWorkload,
  WorkloadAuthenticator,
} from '../../lifecycle/dynamic/workload-auth.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

export interface DynamicRouteDeps {
  /** Without it every route answers 503 TSR_DYNAMIC_UNAVAILABLE. */
  dynamic?: DynamicCredentials
  /** Authenticates workloads by their SVID; needs the CA. */
  auth?: WorkloadAuthenticator
}

const nullableDate = Type.Union([Type.String({ format: 'date-time' }), Type.Null()])

export const LeaseSchema = Type.Object(
  {
    id: Type.String(),
    backend: Type.String(),
    backendType: Type.String(),
    template: Type.String(),
    username: Type.String(),
    spiffeId: Type.String(),
    state: Type.Enum(['pending', 'active', 'revoked'], { type: 'string' }),
    fingerprint: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.String({ format: 'date-time' }),
    activatedAt: nullableDate,
    firstUsedAt: nullableDate,
    lastUsedAt: nullableDate,
    revokeRequestedAt: nullableDate,
    revokeReason: Type.Union([Type.String(), Type.Null()]),
    revokedAt: nullableDate,
    lastError: Type.Union([Type.String(), Type.Null()]),
    createdBy: Type.Union([Type.String(), Type.Null()]),
  },
  { title: 'DynamicLease' },
)

const IssuedSchema = Type.Object(
  {
    leaseId: Type.String(),
    backend: Type.String(),
    backendType: Type.String(),
    template: Type.String(),
    spiffeId: Type.String(),
    username: Type.String(),
    password: Type.String({ description: 'shown this once; Tessera keeps only a fingerprint' }),
    expiresAt: Type.String({ format: 'date-time' }),
    connection: Type.Object(
      {},
      { additionalProperties: true, description: 'host, port, database' },
    ),
  },
  { title: 'DynamicCredential' },
)

const LeaseIdParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
/** Largest body of a credential request: a template name and a TTL. */
const requestBodyLimit = 16 * 1024

/**
 * Just-in-time credentials (docs/dynamic-credentials.md). A workload asks with its SVID (no API
 * token); operators list and revoke leases with a token.
 */
export async function registerDynamicRoutes(app: TesseraApp, deps: DynamicRouteDeps) {
  const need = (): DynamicCredentials => {
    if (!deps.dynamic) {
      throw new TesseraError(
        'TSR_DYNAMIC_UNAVAILABLE',
        'dynamic credentials are not configured on this server (TESSERA_DYNAMIC_CONFIG)',
      )
    }
    return deps.dynamic
  }

  // The workload route, in a scope of its own: its proof signs the raw body, so keep it.
  await app.register(async (plain) => {
    const scope = plain as unknown as TesseraApp
    const raw = new WeakMap<FastifyRequest, Buffer>()
    const workload = new WeakMap<FastifyRequest, AuthenticatedWorkload>()
    scope.removeContentTypeParser('application/json')
    scope.addContentTypeParser(
      'application/json',
      { parseAs: 'buffer', bodyLimit: requestBodyLimit },
      (request, body, done) => {
        raw.set(request, body as Buffer)
        try {
          done(null, JSON.parse((body as Buffer).toString('utf8')))
        } catch {
          done(new TesseraError('TSR_VALIDATION', 'the body is not valid JSON'), undefined)
        }
      },
    )
    // Before validation: an unauthenticated caller learns nothing about the body's shape.
    scope.addHook('preValidation', async (request) => {
      need()
      if (!deps.auth) {
        throw new TesseraError(
          'TSR_DYNAMIC_UNAVAILABLE',
          'this server has no CA to authenticate workloads',
        )
      }
      const header = request.headers.authorization
      workload.set(
        request,
        await deps.auth.authenticate({
          authorization: typeof header === 'string' ? header : undefined,
          method: request.method,
          pathAndQuery: request.url,
          body: raw.get(request) ?? Buffer.alloc(0),
        }),
      )
    })

    scope.post(
      '/v1/dynamic/:backend',
      {
        bodyLimit: requestBodyLimit,
        schema: {
          tags: ['dynamic'],
          summary: 'Create a just-in-time credential for the calling workload (SVID-authenticated)',
          description:
            'No API token: the workload authenticates with `Authorization: Bearer` and either an X509-SVID proof (a JWS signed with the SVID key, `typ` tessera-workload+jwt, the chain in `x5c`, binding method, path, time and body hash) or a JWT-SVID for the audience `spiffe://<trust domain>/tessera/dynamic`. The password is in this response only. See docs/dynamic-credentials.md.',
          security: [],
          params: Type.Object({ backend: Type.String({ maxLength: 63 }) }),
          body: Type.Object(
            {
              template: Type.String({ minLength: 1, maxLength: 63 }),
              ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86_400 })),
            },
            { additionalProperties: false },
          ),
          response: {
            201: IssuedSchema,
            ...problemResponses(400, 401, 403, 404, 413, 415, 502, 503),
          },
        },
      },
      async (request, reply) => {
        const who = workload.get(request)!
        const issued = await need().issue({
          spiffeId: who.spiffeId,
          backend: request.params.backend,
          template: request.body.template,
          ...(request.body.ttlSeconds === undefined ? {} : { ttlSeconds: request.body.ttlSeconds }),
          via: who.via,
          requestId: request.id,
        })
        request.log.info(
          { leaseId: issued.leaseId, spiffeId: issued.spiffeId, backend: issued.backend },
          'dynamic credential issued',
        )
        void reply.header('cache-control', 'no-store')
        return reply.code(201).send({ ...issued, expiresAt: issued.expiresAt.toISOString() })
      },
    )
  })

  app.get(
    '/v1/dynamic/backends',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['dynamic'],
        summary: 'The configured dynamic credential backends and their templates',
        security: bearerSecurity,
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object({
                name: Type.String(),
                type: Type.String(),
                templates: Type.Array(Type.String()),
                maxTtlSeconds: Type.Integer(),
              }),
            ),
          }),
          ...problemResponses(401, 403, 503),
        },
      },
    },
    async () => ({ items: need().backends() }),
  )

  app.get(
    '/v1/dynamic/leases',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['dynamic'],
        summary: 'Dynamic credential leases, newest first',
        security: bearerSecurity,
        querystring: Type.Object(
          {
            state: Type.Optional(Type.Enum(['pending', 'active', 'revoked'], { type: 'string' })),
            spiffeId: Type.Optional(Type.String({ maxLength: 2048 })),
            backend: Type.Optional(Type.String({ maxLength: 63 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(LeaseSchema) }),
          ...problemResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => ({ items: await need().list(request.query) }),
  )

  app.get(
    '/v1/dynamic/leases/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['dynamic'],
        summary: 'One dynamic credential lease',
        security: bearerSecurity,
        params: LeaseIdParams,
        response: { 200: LeaseSchema, ...problemResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => need().get(request.params.id),
  )

  app.post(
    '/v1/dynamic/leases/:id/revoke',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['dynamic'],
        summary: 'Revoke a lease now: drop the user and end its sessions',
        security: bearerSecurity,
        params: LeaseIdParams,
        body: Type.Optional(
          Type.Object(
            { reason: Type.Optional(Type.String({ maxLength: 200 })) },
            { additionalProperties: false },
          ),
        ),
        response: { 200: LeaseSchema, ...problemResponses(400, 401, 403, 404, 502, 503) },
      },
    },
    async (request) => {
      const lease = await need().revoke(request.params.id, {
        reason: request.body?.reason ?? 'requested',
        actor: `api-token:${request.apiToken?.id ?? 'unknown'}`,
      })
      request.log.info({ leaseId: lease.id, state: lease.state }, 'dynamic lease revoked')
      return lease
    },
  )
}
