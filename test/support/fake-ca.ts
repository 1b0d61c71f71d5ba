import 'reflect-metadata'
import { createPublicKey, KeyObject, randomBytes, randomUUID, webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { importJWK, jwtVerify, SignJWT, exportJWK, type JWK } from 'jose'
import type {
  CertificateAuthority,
  IssueContext,
  JwtSvidRequest,
  JwtSvidResult,
  ValidatedJwtSvid,
  X509SvidRequest,
  X509SvidResult,
} from '../../src/ca/ca-types.js'
import type { Clock } from '../../src/runtime/clock.js'
import type { TrustBundle } from '../../src/spiffe/types.js'

x509.cryptoProvider.set(webcrypto as never)

type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const

export async function generateP256(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify'])) as CryptoKeyPair
}

async function toCryptoKey(publicKey: KeyObject): Promise<CryptoKey> {
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  return (await webcrypto.subtle.importKey('spki', spki, ecdsa, true, ['verify'])) as CryptoKey
}

/** A self-signed CA certificate (for the fake CA and for x509pop roots in tests). */
export async function makeCaCert(
  name: string,
  keys: CryptoKeyPair,
  notBefore: Date,
  notAfter: Date,
  uri?: string,
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name,
    notBefore,
    notAfter,
    keys: keys as never,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      ...(uri ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }])] : []),
    ],
  })
}

/** A leaf certificate signed by `issuer` (x509pop node certificates, SVIDs). */
export async function makeLeafCert(opts: {
  issuer: x509.X509Certificate
  issuerKey: CryptoKey
  publicKey: CryptoKey
  subject?: string
  uri?: string
  dns?: string[]
  notBefore: Date
  notAfter: Date
  serial?: string
}): Promise<x509.X509Certificate> {
  const names: x509.JsonGeneralName[] = [
    ...(opts.uri ? [{ type: 'url' as const, value: opts.uri }] : []),
    ...(opts.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
  ]
  return x509.X509CertificateGenerator.create({
    serialNumber:
      opts.serial ??
      randomBytes(16)
        .toString('hex')
        .replace(/^[89a-f]/, '1'),
    issuer: opts.issuer.subject,
    subject: opts.subject ?? '',
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    signingKey: opts.issuerKey as never,
    publicKey: opts.publicKey as never,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      ...(names.length ? [new x509.SubjectAlternativeNameExtension(names, !opts.subject)] : []),
    ],
  })
}

export interface FakeCa extends CertificateAuthority {
  readonly issued: { spiffeId: string; serial: string; ctx?: IssueContext }[]
  /** Bumps the bundle sequence (as a rotation would). */
  bumpBundle(): void
}

/**
 * A small CertificateAuthority for tests: a self-signed P-256 root signing leaves directly, and an
 * ES256 JWT key. Not the real CA (src/ca); just enough to exercise the control plane honestly.
 */
export async function createFakeCa(trustDomain: string, clock: Clock): Promise<FakeCa> {
  const now = clock.now()
  const rootKeys = await generateP256()
  const root = await makeCaCert(
    `CN=${trustDomain} test root`,
    rootKeys,
    new Date(now.getTime() - 3600_000),
    new Date(now.getTime() + 30 * 86_400_000),
    `spiffe://${trustDomain}`,
  )
  const jwtKeys = await generateP256()
  const kid = randomBytes(8).toString('hex')
  const jwtPublic = await exportJWK(jwtKeys.publicKey)
  const issued: FakeCa['issued'] = []
  let sequence = 1
  return {
    trustDomain,
    issued,
    bumpBundle: () => {
      sequence++
    },
    async signX509Svids(requests: readonly X509SvidRequest[], ctx?: IssueContext) {
      const out: X509SvidResult[] = []
      for (const r of requests) {
        const t = clock.now()
        const notBefore = new Date(t.getTime() - 10_000)
        const notAfter = new Date(t.getTime() + (r.ttlSeconds ?? 3600) * 1000)
        const serial = randomBytes(16)
          .toString('hex')
          .replace(/^[89a-f]/, '1')
        const cert = await makeLeafCert({
          issuer: root,
          issuerKey: rootKeys.privateKey,
          publicKey: (await toCryptoKey(
            r.publicKey instanceof KeyObject
              ? r.publicKey
              : createPublicKey({ key: Buffer.from(r.publicKey), format: 'der', type: 'spki' }),
          )) as never,
          uri: r.spiffeId,
          ...(r.dnsNames ? { dns: [...r.dnsNames] } : {}),
          notBefore,
          notAfter,
          serial,
        })
        issued.push({ spiffeId: r.spiffeId, serial, ...(ctx ? { ctx } : {}) })
        out.push({
          spiffeId: r.spiffeId,
          certChain: [Buffer.from(cert.rawData)],
          serial,
          notBefore: cert.notBefore,
          notAfter: cert.notAfter,
        })
      }
      return out
    },
    async mintJwtSvid(request: JwtSvidRequest, ctx?: IssueContext): Promise<JwtSvidResult> {
      const issuedAt = clock.now()
      const expiresAt = new Date(issuedAt.getTime() + (request.ttlSeconds ?? 300) * 1000)
      const jti = randomUUID()
      const token = await new SignJWT({ ...request.claims })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
        .setSubject(request.spiffeId)
        .setAudience([...request.audience])
        .setIssuedAt(Math.floor(issuedAt.getTime() / 1000))
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .setJti(jti)
        .sign(jwtKeys.privateKey)
      issued.push({ spiffeId: request.spiffeId, serial: jti, ...(ctx ? { ctx } : {}) })
      return { token, spiffeId: request.spiffeId, jti, kid, issuedAt, expiresAt }
    },
    async validateJwtSvid(token: string, audience: string): Promise<ValidatedJwtSvid> {
      const key = await importJWK(jwtPublic as JWK, 'ES256')
      const { payload } = await jwtVerify(token, key, {
        audience,
        algorithms: ['ES256'],
        currentDate: clock.now(),
      })
      return { spiffeId: String(payload.sub), claims: payload as Record<string, unknown> }
    },
    async bundle(): Promise<TrustBundle> {
      return {
        trustDomain,
        x509Authorities: [Buffer.from(root.rawData)],
        jwtAuthorities: [{ kid, publicKey: jwtPublic as never }],
        sequence,
        refreshHintSeconds: 300,
      }
    },
  }
}

/** A node:crypto KeyObject from a WebCrypto public key. */
export async function keyObjectOf(key: CryptoKey): Promise<KeyObject> {
  return createPublicKey({
    key: Buffer.from(await webcrypto.subtle.exportKey('spki', key)),
    format: 'der',
    type: 'spki',
  })
}
