import { Type, type Static } from 'typebox'
import type { CertificateAuthority } from '../../ca/ca-types.js'
import { TesseraError } from '../../errors.js'
import { bundleToJwks, jwtJwks } from '../../spiffe/bundle.js'
import type { TesseraApp } from '../app-types.js'
import { problemResponses } from '../schemas.js'

const Jwk = Type.Object(
  {
    kty: Type.String(),
    use: Type.Optional(Type.String()),
    kid: Type.Optional(Type.String()),
    x5c: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: true },
)

const SpiffeBundleSchema = Type.Object(
  {
    keys: Type.Array(Jwk, {
      description:
        'One `x509-svid` JWK per CA certificate (with `x5c`, no `kid`) and one `jwt-svid` JWK per JWT signing key (with `kid`)',
    }),
    spiffe_sequence: Type.Integer({ description: 'increases on every change of the bundle' }),
    spiffe_refresh_hint: Type.Integer({ description: 'seconds between polls' }),
  },
  { title: 'SpiffeBundle', additionalProperties: true },
)

const JwksSchema = Type.Object(
  { keys: Type.Array(Jwk) },
  { title: 'Jwks', additionalProperties: true },
)

/**
 * The trust domain's SPIFFE bundle (public: relying parties and federated trust domains fetch it
 * without credentials) and the JWT signing keys as a plain JWKS for JOSE libraries
 * (`createRemoteJWKSet`). Both include prepared keys before they sign anything.
 */
export function registerBundleRoutes(
  app: TesseraApp,
  deps: { ca?: Pick<CertificateAuthority, 'bundle'> },
): void {
  const ca = () => {
    if (deps.ca === undefined) throw new TesseraError('TSR_NOT_FOUND', 'this server runs no CA')
    return deps.ca
  }
  app.get(
    '/v1/bundle',
    {
      schema: {
        tags: ['spiffe'],
        summary: "The trust domain's SPIFFE bundle (JWK Set)",
        description:
          'Public, as the SPIFFE federation standard requires. Poll at `spiffe_refresh_hint` seconds; keys are published well before they are used.',
        produces: ['application/json'],
        response: { 200: SpiffeBundleSchema, ...problemResponses(404) },
      },
    },
    async (_request, reply) => {
      const doc = bundleToJwks(await ca().bundle()) as unknown as Static<typeof SpiffeBundleSchema>
      return reply.type('application/json').header('cache-control', 'no-cache').send(doc)
    },
  )
  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['spiffe'],
        summary: 'The JWT-SVID signing keys as a plain JWKS',
        description:
          "For JOSE libraries (e.g. jose's createRemoteJWKSet). Verify `sub` is a SPIFFE ID of this trust domain and `aud` holds your audience.",
        response: { 200: JwksSchema, ...problemResponses(404) },
      },
    },
    async (_request, reply) => {
      const doc = jwtJwks(await ca().bundle()) as unknown as Static<typeof JwksSchema>
      return reply.type('application/json').header('cache-control', 'no-cache').send(doc)
    },
  )
}
