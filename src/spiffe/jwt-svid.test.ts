import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { SignJWT } from 'jose'
import { isTesseraError } from '../errors.js'
import { validateJwtSvid } from './jwt-svid.js'
import type { TrustBundle } from './types.js'

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const bundle: TrustBundle = {
  trustDomain: 'example.org',
  x509Authorities: [],
  jwtAuthorities: [
    { kid: 'ec1', publicKey: ec.publicKey.export({ format: 'jwk' }) },
    { kid: 'rsa1', publicKey: rsa.publicKey.export({ format: 'jwk' }) },
  ],
  sequence: 1,
  refreshHintSeconds: 300,
}
const now = new Date()
const iat = Math.floor(now.getTime() / 1000)

async function token(
  opts: {
    alg?: string
    kid?: string | undefined
    key?: KeyObject | Uint8Array
    sub?: string
    aud?: string | string[]
    exp?: number | undefined
    header?: Record<string, unknown>
  } = {},
): Promise<string> {
  const alg = opts.alg ?? 'ES256'
  const claims: Record<string, unknown> = {
    sub: opts.sub ?? 'spiffe://example.org/web',
    aud: opts.aud ?? ['api'],
    iat,
  }
  if (!('exp' in opts)) claims.exp = iat + 300
  else if (opts.exp !== undefined) claims.exp = opts.exp
  const header = {
    alg,
    typ: 'JWT',
    ...('kid' in opts ? (opts.kid === undefined ? {} : { kid: opts.kid }) : { kid: 'ec1' }),
    ...opts.header,
  }
  return new SignJWT(claims)
    .setProtectedHeader(header as { alg: string })
    .sign(opts.key ?? ec.privateKey)
}

const reason = (fn: () => unknown): string => {
  try {
    fn()
    return 'ok'
  } catch (err) {
    assert.ok(isTesseraError(err, 'TSR_JWT_SVID_INVALID'), String(err))
    return String(err.details?.reason)
  }
}

async function reasonAsync(t: Promise<string>, fn: (t: string) => unknown): Promise<string> {
  const text = await t
  return reason(() => fn(text))
}

describe('JWT-SVID validation', () => {
  it('accepts ES256, RS256 and PS256 tokens signed by bundle keys (signed by jose)', async () => {
    const v = validateJwtSvid(await token(), bundle, 'api', now)
    assert.equal(v.spiffeId, 'spiffe://example.org/web')
    assert.equal(v.header.kid, 'ec1')
    assert.equal(
      validateJwtSvid(
        await token({ alg: 'RS256', kid: 'rsa1', key: rsa.privateKey }),
        bundle,
        'api',
        now,
      ).header.alg,
      'RS256',
    )
    assert.equal(
      validateJwtSvid(
        await token({ alg: 'PS256', kid: 'rsa1', key: rsa.privateKey }),
        bundle,
        'api',
        now,
      ).header.alg,
      'PS256',
    )
    // Without a kid every bundle key is tried.
    assert.equal(
      validateJwtSvid(await token({ kid: undefined }), bundle, 'api', now).spiffeId,
      'spiffe://example.org/web',
    )
    assert.equal(
      validateJwtSvid(await token({ aud: 'api' }), bundle, 'api', now).spiffeId,
      'spiffe://example.org/web',
    )
  })

  it('rejects HS256, alg none, expired, wrong audience, unknown kid, bad signature', async () => {
    const hs = await token({ alg: 'HS256', key: randomBytes(32) })
    assert.equal(
      reason(() => validateJwtSvid(hs, bundle, 'api', now)),
      'alg',
    )
    const good = await token()
    const [, payload] = good.split('.')
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.AA`
    assert.equal(
      reason(() => validateJwtSvid(none, bundle, 'api', now)),
      'alg',
    )
    assert.equal(
      await reasonAsync(token({ exp: iat - 10 }), (t) => validateJwtSvid(t, bundle, 'api', now)),
      'expired',
    )
    assert.equal(
      validateJwtSvid(await token({ exp: iat - 10 }), bundle, 'api', now, { leewaySeconds: 30 })
        .spiffeId,
      'spiffe://example.org/web',
    )
    assert.equal(
      await reasonAsync(token({ exp: undefined }), (t) => validateJwtSvid(t, bundle, 'api', now)),
      'exp',
    )
    assert.equal(
      reason(() => validateJwtSvid(good, bundle, 'other', now)),
      'audience',
    )
    assert.equal(
      await reasonAsync(token({ aud: [] }), (t) => validateJwtSvid(t, bundle, 'api', now)),
      'aud',
    )
    assert.equal(
      await reasonAsync(token({ kid: 'nope' }), (t) => validateJwtSvid(t, bundle, 'api', now)),
      'unknown-kid',
    )
    assert.equal(
      await reasonAsync(token({ key: stranger.privateKey }), (t) =>
        validateJwtSvid(t, bundle, 'api', now),
      ),
      'signature',
    )
    // An RSA key named by an ES256 header does not verify.
    assert.equal(
      await reasonAsync(token({ kid: 'rsa1' }), (t) => validateJwtSvid(t, bundle, 'api', now)),
      'signature',
    )
    assert.equal(
      reason(() => validateJwtSvid(good, bundle, 'api', now, { algorithms: ['RS256'] })),
      'alg',
    )
  })

  it('rejects extra headers, a bad typ, a sub that is not a SPIFFE ID or of another trust domain', async () => {
    assert.equal(
      reason(() => validateJwtSvid('x', bundle, 'api', now)),
      'malformed',
    )
    const jku = await token({ header: { jku: 'https://evil.example/jwks' } })
    assert.equal(
      reason(() => validateJwtSvid(jku, bundle, 'api', now)),
      'header',
    )
    assert.equal(
      await reasonAsync(token({ header: { typ: 'at+jwt' } }), (t) =>
        validateJwtSvid(t, bundle, 'api', now),
      ),
      'typ',
    )
    assert.equal(
      await reasonAsync(token({ sub: 'web' }), (t) => validateJwtSvid(t, bundle, 'api', now)),
      'sub',
    )
    assert.equal(
      await reasonAsync(token({ sub: 'spiffe://other.org/web' }), (t) =>
        validateJwtSvid(t, bundle, 'api', now),
      ),
      'no-bundle',
    )
    const dup = `${Buffer.from('{"alg":"ES256","alg":"none"}').toString('base64url')}.e30.AA`
    assert.throws(() => validateJwtSvid(dup, bundle, 'api', now), /twice/)
  })

  it('throws nothing but TSR_JWT_SVID_INVALID on arbitrary and mutated tokens (fuzz)', async () => {
    const good = await token()
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const arb = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc
        .tuple(fc.nat(good.length - 1), fc.constantFrom(...'ABCxyz019-_.'.split('')))
        .map(([at, c]) => good.slice(0, at) + c + good.slice(at + 1)),
      fc.tuple(fc.jsonValue(), fc.jsonValue()).map(([h, p]) => `${b64(h)}.${b64(p)}.AAAA`),
      fc
        .record({
          alg: fc.constantFrom('ES256', 'RS256', 'PS512', 'none', 'HS256'),
          kid: fc.constantFrom('ec1', 'rsa1', 'x'),
        })
        .chain((h) =>
          fc
            .record({ sub: fc.string(), aud: fc.jsonValue(), exp: fc.jsonValue() })
            .map((p) => `${b64(h)}.${b64(p)}.${good.split('.')[2]}`),
        ),
    )
    fc.assert(
      fc.property(arb, (t) => {
        reason(() => validateJwtSvid(t, bundle, 'api', now))
      }),
      { numRuns: 1500 },
    )
  })
})
