import { Type } from 'typebox'
import type { ScimService } from '../../inventory/owners/scim-service.js'
import { scimSchemas } from '../../inventory/owners/scim.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { toTesseraError } from '../plugins/error-handler.js'

/**
 * SCIM 2.0 provisioning (RFC 7644) for an IdP: `/scim/v2/Users` and `/scim/v2/Groups` with POST,
 * GET (one or a filtered list), PUT, PATCH (PatchOp) and DELETE (a person is marked departed, a
 * team dissolved; nothing is deleted). A bearer token with the `scim` scope (or admin) is needed;
 * errors are SCIM errors (`schemas`, `status` as a string, `scimType`, `detail`).
 */
export const scimContentType = 'application/scim+json'

const Resource = Type.Object({}, { additionalProperties: true, title: 'ScimResource' })
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) })
const ListQuery = Type.Object(
  {
    filter: Type.Optional(Type.String({ maxLength: 1000, description: 'attr eq "value"' })),
    startIndex: Type.Optional(Type.Integer({ minimum: 1 })),
    count: Type.Optional(Type.Integer({ minimum: 0, maximum: 500 })),
  },
  { additionalProperties: true },
)

export function registerScimRoutes(app: TesseraApp, deps: { scim: ScimService }): void {
  app.addContentTypeParser(scimContentType, { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string))
    } catch {
      const err = new Error('the body is not JSON') as Error & { statusCode: number; code: string }
      err.statusCode = 400
      err.code = 'FST_ERR_CTP_INVALID_JSON_BODY'
      done(err, undefined)
    }
  })
  app.setErrorHandler((error: unknown, request, reply) => {
    const e = toTesseraError(error)
    if (e.status >= 500) request.log.error({ err: error }, 'SCIM request failed')
    const scimType =
      typeof e.details?.scimType === 'string'
        ? e.details.scimType
        : e.code === 'TSR_VALIDATION'
          ? 'invalidValue'
          : undefined
    return reply
      .code(e.status)
      .type(scimContentType)
      .send(
        JSON.stringify({
          schemas: [scimSchemas.error],
          status: String(e.status),
          ...(scimType && e.status === 400
            ? { scimType }
            : e.status === 409
              ? { scimType: 'uniqueness' }
              : {}),
          detail: e.status >= 500 ? 'internal error' : e.message,
        }),
      )
  })
  const config = { scope: 'scim' as const }
  const send = (
    reply: { code(n: number): { type(t: string): { send(b: string): unknown } } },
    status: number,
    body: unknown,
  ) => reply.code(status).type(scimContentType).send(JSON.stringify(body))

  for (const [kind, plural] of [
    ['User', 'Users'],
    ['Group', 'Groups'],
  ] as const) {
    const s = deps.scim
    const ops =
      kind === 'User'
        ? {
            create: s.createUser,
            get: s.getUser,
            list: s.listUsers,
            put: s.replaceUser,
            patch: s.patchUser,
            del: s.deleteUser,
          }
        : {
            create: s.createGroup,
            get: s.getGroup,
            list: s.listGroups,
            put: s.replaceGroup,
            patch: s.patchGroup,
            del: s.deleteGroup,
          }
    const base = `/scim/v2/${plural}`
    const common = { tags: ['scim'], security: bearerSecurity }
    app.post(
      base,
      { config, schema: { ...common, summary: `SCIM: create a ${kind}`, body: Resource } },
      async (req, reply) => send(reply, 201, await ops.create(req.body)),
    )
    app.get(
      base,
      {
        config,
        schema: { ...common, summary: `SCIM: list or filter ${plural}`, querystring: ListQuery },
      },
      async (req, reply) => send(reply, 200, await ops.list(req.query)),
    )
    app.get(
      `${base}/:id`,
      { config, schema: { ...common, summary: `SCIM: one ${kind}`, params: IdParams } },
      async (req, reply) => send(reply, 200, await ops.get(req.params.id)),
    )
    app.put(
      `${base}/:id`,
      {
        config,
        schema: { ...common, summary: `SCIM: replace a ${kind}`, params: IdParams, body: Resource },
      },
      async (req, reply) => send(reply, 200, await ops.put(req.params.id, req.body)),
    )
    app.patch(
      `${base}/:id`,
      {
        config,
        schema: {
          ...common,
          summary: `SCIM: PatchOp on a ${kind}`,
          params: IdParams,
          body: Resource,
        },
      },
      async (req, reply) => send(reply, 200, await ops.patch(req.params.id, req.body)),
    )
    app.delete(
      `${base}/:id`,
      {
        config,
        schema: {
          ...common,
          summary: `SCIM: deprovision a ${kind} (kept as departed)`,
          params: IdParams,
        },
      },
      async (req, reply) => {
        await ops.del(req.params.id)
        return reply.code(204).send()
      },
    )
  }
  app.get(
    '/scim/v2/ServiceProviderConfig',
    {
      config,
      schema: {
        tags: ['scim'],
        security: bearerSecurity,
        summary: 'SCIM: what this service provider supports',
      },
    },
    async (_req, reply) =>
      send(reply, 200, {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
        patch: { supported: true },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: 500 },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: false },
        authenticationSchemes: [
          {
            type: 'oauthbearertoken',
            name: 'Bearer token',
            description: 'A Tessera API token with the scim scope',
          },
        ],
      }),
  )
}
