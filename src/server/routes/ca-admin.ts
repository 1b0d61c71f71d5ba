import { Type } from 'typebox'
import type { CertificateAuthority } from '../../ca/ca-types.js'
import type { Ca, CaKeyView } from '../../ca/ca.js'
import { createCrlService, toCrlPem } from '../../ca/crl.js'
import { listIssuance } from '../../ca/issuance-history.js'
import { TesseraError } from '../../errors.js'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'
import { optionalDate } from './query.js'

/** A CA key as the API shows it: never key material. */
export interface CaKeyJson {
  id: string
  purpose: 'x509_ca' | 'jwt'
  slot: 'prepared' | 'active' | 'old'
  notBefore: string
  notAfter: string
  tainted: boolean
  revoked: boolean
  published: boolean
}

export function caKeyJson(k: CaKeyView): CaKeyJson {
  return {
    id: k.id,
    purpose: k.purpose,
    slot: k.slot,
    notBefore: k.notBefore.toISOString(),
    notAfter: k.notAfter.toISOString(),
    tainted: k.tainted,
    revoked: k.revoked,
    published: k.published,
  }
}

export const CaKeySchema = Type.Object(
  {
    id: Type.String(),
    purpose: Type.Enum(['x509_ca', 'jwt'], { type: 'string' }),
    slot: Type.Enum(['prepared', 'active', 'old'], { type: 'string' }),
    notBefore: Type.String({ format: 'date-time' }),
    notAfter: Type.String({ format: 'date-time' }),
    tainted: Type.Boolean(),
    revoked: Type.Boolean(),
    published: Type.Boolean({ description: 'in the trust bundle now' }),
  },
  { title: 'CaKey' },
)

const IssuanceSchema = Type.Object(
  {
    id: Type.Integer(),
    svidType: Type.Enum(['x509', 'jwt'], { type: 'string' }),
    serial: Type.Union([Type.String(), Type.Null()]),
    jti: Type.Union([Type.String(), Type.Null()]),
    spiffeId: Type.String(),
    entryId: Type.Union([Type.String(), Type.Null()]),
    agentId: Type.Union([Type.String(), Type.Null()]),
    agentSpiffeId: Type.Union([Type.String(), Type.Null()]),
    notBefore: Type.String({ format: 'date-time' }),
    notAfter: Type.String({ format: 'date-time' }),
    issuedAt: Type.String({ format: 'date-time' }),
    publicKeyHash: Type.Union([Type.String(), Type.Null()]),
  },
  { title: 'Issuance' },
)

type AdminCa = Pick<Ca, 'keys' | 'taint' | 'revoke' | 'crlIssuers' | 'tick'>

/** The server's CA when it is the full one (with key admin and CRL signing), not a test double. */
function adminCa(ca: CertificateAuthority | undefined): AdminCa | undefined {
  const c = ca as Partial<AdminCa> | undefined
  return c &&
    typeof c.keys === 'function' &&
    typeof c.taint === 'function' &&
    typeof c.revoke === 'function' &&
    typeof c.crlIssuers === 'function' &&
    typeof c.tick === 'function'
    ? (c as AdminCa)
    : undefined
}

/**
 * CRLs of the deny-list (public, like the bundle), CA key admin for emergency rotation (taint, then
 * revoke), and the issuance history ("who held SPIFFE ID X at time T, on which node").
 */
export function registerCaAdminRoutes(
  app: TesseraApp,
  deps: { store: Store; ca?: CertificateAuthority; clock: Clock },
): void {
  const full = adminCa(deps.ca)
  const ca = (): AdminCa => {
    if (full === undefined) throw new TesseraError('TSR_NOT_FOUND', 'this server runs no CA')
    return full
  }
  const crls = full
    ? createCrlService({ store: deps.store, ca: full, clock: deps.clock })
    : undefined
  const crl = () => {
    if (crls === undefined) throw new TesseraError('TSR_NOT_FOUND', 'this server runs no CA')
    return crls
  }

  app.get(
    '/v1/crl',
    {
      schema: {
        tags: ['revocation'],
        summary: 'The deny-list as an X.509 v2 CRL (DER) signed by the active X.509 CA key',
        description:
          'Public. Lists the serials on the deny-list, those of unexpired X509-SVIDs of revoked SPIFFE IDs, and those of a banned agent (its own SVID and every unexpired SVID it had signed). `keyId` picks the CRL of another published CA key (for leaves it issued); /v1/crl.pem has them all.',
        security: [],
        querystring: Type.Object(
          { keyId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Unsafe<Buffer>({
            type: 'string',
            format: 'binary',
            description: 'application/pkix-crl (DER)',
          }),
          ...problemResponses(400, 404),
        },
      },
    },
    async (request, reply) => {
      const all = await crl().build()
      const wanted = request.query.keyId
      const one = wanted === undefined ? all[0] : all.find((c) => c.keyId === wanted)
      if (!one) throw new TesseraError('TSR_NOT_FOUND', `no published X.509 CA key ${wanted}`)
      return reply
        .type('application/pkix-crl')
        .header('cache-control', 'no-cache')
        .header('last-modified', one.thisUpdate.toUTCString())
        .send(one.der)
    },
  )

  app.get(
    '/v1/crl.pem',
    {
      schema: {
        tags: ['revocation'],
        summary: 'The CRLs of every published X.509 CA key, PEM (the active key first)',
        security: [],
        response: {
          200: Type.String({ description: 'application/x-pem-file' }),
          ...problemResponses(404),
        },
      },
    },
    async (_request, reply) => {
      const all = await crl().build()
      return reply
        .type('application/x-pem-file')
        .header('cache-control', 'no-cache')
        .send(all.map((c) => toCrlPem(c.der)).join(''))
    },
  )

  app.get(
    '/v1/ca/keys',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['spiffe'],
        summary:
          "The trust domain's CA keys: slot, validity, taint and revocation (no key material)",
        security: bearerSecurity,
        response: {
          200: Type.Object({ items: Type.Array(CaKeySchema) }),
          ...problemResponses(401, 403, 404),
        },
      },
    },
    async () => {
      const c = ca()
      await c.tick() // see other replicas' rotations and taints
      return { items: c.keys().map(caKeyJson) }
    },
  )

  app.post(
    '/v1/ca/keys/:id/taint',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['spiffe'],
        summary:
          'Emergency rotation, step 1: the key stops signing at once (it stays in the bundle) and a successor becomes active',
        description:
          'The id may be `active:x509_ca` or `active:jwt` to taint the active key of that purpose.',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: {
          200: Type.Object({ tainted: Type.String(), active: Type.String() }),
          ...problemResponses(401, 403, 404, 409),
        },
      },
    },
    async (request) => {
      const id = request.params.id
      const target =
        id === 'active:x509_ca'
          ? { purpose: 'x509_ca' as const }
          : id === 'active:jwt'
            ? { purpose: 'jwt' as const }
            : { keyId: id }
      const result = await ca().taint(target)
      request.log.warn(result, 'CA key tainted')
      return result
    },
  )

  app.post(
    '/v1/ca/keys/:id/revoke',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['spiffe'],
        summary:
          'Emergency rotation, step 2: a tainted key leaves the bundle for good (SVIDs it signed stop validating)',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: { 200: CaKeySchema, ...problemResponses(401, 403, 404, 409) },
      },
    },
    async (request) => {
      const c = ca()
      await c.revoke(request.params.id)
      request.log.warn({ keyId: request.params.id }, 'CA key revoked')
      const key = c.keys().find((k) => k.id === request.params.id)
      if (!key) throw new TesseraError('TSR_NOT_FOUND', `no CA key ${request.params.id}`)
      return caKeyJson(key)
    },
  )

  app.get(
    '/v1/issuance',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['spiffe'],
        summary:
          'Issued SVIDs, newest first: which identity held a SPIFFE ID at an instant, through which agent',
        security: bearerSecurity,
        querystring: Type.Object(
          {
            spiffeId: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
            at: Type.Optional(
              Type.String({
                format: 'date-time',
                description: 'only SVIDs valid then (notBefore ≤ at < notAfter)',
              }),
            ),
            agentId: Type.Optional(Type.String({ minLength: 36, maxLength: 36 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            cursor: Type.Optional(Type.String({ maxLength: 20 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(IssuanceSchema),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const q = request.query
      const at = optionalDate(q.at)
      return listIssuance(deps.store, {
        ...(q.spiffeId === undefined ? {} : { spiffeId: q.spiffeId }),
        ...(at === undefined ? {} : { at }),
        ...(q.agentId === undefined ? {} : { agentId: q.agentId }),
        ...(q.limit === undefined ? {} : { limit: q.limit }),
        ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
      })
    },
  )
}
