import { Type } from 'typebox'
import { TesseraError } from '../../errors.js'
import { bundleEndpointProfiles, type Federation } from '../../federation/federation.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const Profile = Type.Enum([...bundleEndpointProfiles], { type: 'string' })
const nullableDate = Type.Union([Type.String({ format: 'date-time' }), Type.Null()])

export const FederationSchema = Type.Object(
  {
    trustDomain: Type.String(),
    bundleEndpointUrl: Type.String(),
    profile: Profile,
    endpointSpiffeId: Type.Optional(Type.String()),
    createdAt: Type.String({ format: 'date-time' }),
    createdBy: Type.Union([Type.String(), Type.Null()]),
    nextPollAt: Type.String({ format: 'date-time' }),
    lastPolledAt: nullableDate,
    lastSuccessAt: nullableDate,
    lastError: Type.Union([Type.String(), Type.Null()]),
    consecutiveFailures: Type.Integer(),
    bundleSequence: Type.Union([Type.Integer(), Type.Null()]),
    bundleFetchedAt: nullableDate,
  },
  { title: 'FederationRelationship' },
)

const PollOutcomeSchema = Type.Object({
  trustDomain: Type.String(),
  outcome: Type.Enum(['updated', 'unchanged', 'failed'], { type: 'string' }),
  sequence: Type.Optional(Type.Integer()),
  error: Type.Optional(Type.String()),
})

const TrustDomainParam = Type.Object({
  trustDomain: Type.String({ minLength: 1, maxLength: 255 }),
})

/** Federation relationships. Changing them is admin work: they decide which roots are trusted. */
export function registerFederationRoutes(
  app: TesseraApp,
  deps: { federation: Federation | undefined },
): void {
  const federation = (): Federation => {
    if (!deps.federation) {
      throw new TesseraError('TSR_CONFIG', 'federation is not enabled on this server (no CA)')
    }
    return deps.federation
  }

  app.post(
    '/v1/federation',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['federation'],
        summary: 'Federate with a trust domain: where its bundle comes from and how to trust it',
        security: bearerSecurity,
        body: Type.Object(
          {
            trustDomain: Type.String({ minLength: 1, maxLength: 270 }),
            bundleEndpointUrl: Type.String({ minLength: 1, maxLength: 2048 }),
            profile: Profile,
            endpointSpiffeId: Type.Optional(Type.String({ maxLength: 2048 })),
            trustBundle: Type.Optional(
              Type.String({
                maxLength: 4 * 1024 * 1024,
                description: 'the foreign SPIFFE bundle document (JSON text), to start trust',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: FederationSchema, ...problemResponses(400, 401, 403, 409, 415) },
      },
    },
    async (request, reply) => {
      const view = await federation().add({
        ...request.body,
        createdBy: `api-token:${request.apiToken?.id ?? 'unknown'}`,
      })
      request.log.info({ trustDomain: view.trustDomain, profile: view.profile }, 'federation added')
      return reply.code(201).send(view)
    },
  )

  app.get(
    '/v1/federation',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['federation'],
        summary: 'Federation relationships with their polling state and current bundle sequence',
        security: bearerSecurity,
        response: {
          200: Type.Object({ items: Type.Array(FederationSchema) }),
          ...problemResponses(401, 403),
        },
      },
    },
    async () => ({ items: await federation().list() }),
  )

  app.get(
    '/v1/federation/:trustDomain',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['federation'],
        summary: 'One federation relationship',
        security: bearerSecurity,
        params: TrustDomainParam,
        response: { 200: FederationSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const view = await federation().get(request.params.trustDomain)
      if (!view) {
        throw new TesseraError('TSR_NOT_FOUND', `no federation with ${request.params.trustDomain}`)
      }
      return view
    },
  )

  app.post(
    '/v1/federation/:trustDomain/refresh',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['federation'],
        summary: 'Fetch the trust domain bundle now, whatever the schedule',
        security: bearerSecurity,
        params: TrustDomainParam,
        response: { 200: PollOutcomeSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => federation().refresh(request.params.trustDomain),
  )

  app.delete(
    '/v1/federation/:trustDomain',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['federation'],
        summary: 'Stop federating: its bundle is no longer trusted or delivered (history is kept)',
        security: bearerSecurity,
        params: TrustDomainParam,
        response: {
          204: { type: 'null', description: 'removed' },
          ...problemResponses(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      await federation().remove(request.params.trustDomain)
      request.log.info({ trustDomain: request.params.trustDomain }, 'federation removed')
      return reply.code(204).send(null)
    },
  )
}
