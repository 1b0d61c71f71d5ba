import 'reflect-metadata'
import {
  createHash,
  createPublicKey,
  randomBytes,
  webcrypto,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { SignJWT, exportJWK, type CryptoKey as JoseCryptoKey } from 'jose'
import type { Clock } from '../../runtime/clock.js'
import { systemClock } from '../../runtime/clock.js'
import type { JwtSvidResult, X509SvidResult } from '../../ca/ca-types.js'
import type { RegistrationEntry, Revocation, TrustBundle } from '../../spiffe/types.js'
import type { AgentControlPort } from '../agent-ports.js'

x509.cryptoProvider.set(webcrypto as never)

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const

/**
 * A small but real CA for tests and benchmarks: ECDSA P-256 root with the SPIFFE CA profile, leaves
 * with the X509-SVID profile (one URI SAN, cA false, KeyUsage critical digitalSignature, EKU
 * serverAuth+clientAuth), ES256 JWT-SVIDs. Not the product CA (src/ca); just enough to sign for real.
 */
export interface TestCa {
  trustDomain: string
  rootDer(): Buffer[]
  signX509(spiffeId: string, publicKey: KeyObject, ttlSeconds: number): Promise<X509SvidResult>
  mintJwt(spiffeId: string, audience: readonly string[], ttlSeconds: number): Promise<JwtSvidResult>
  jwtAuthorities(): TrustBundle['jwtAuthorities']
  /** Adds a new root (published first) and signs with it from now on. */
  rotate(): Promise<void>
}

export async function createTestCa(
  trustDomain: string,
  clock: Clock = systemClock,
  backdateSeconds = 10,
): Promise<TestCa> {
  let serialCounter = BigInt('0x' + randomBytes(6).toString('hex'))
  const roots: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }[] = []
  let jwtKey: { kid: string; privateKey: JoseCryptoKey; jwk: JsonWebKey }

  async function newRoot(): Promise<void> {
    const keys = (await webcrypto.subtle.generateKey(ecdsa, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair
    const now = clock.now()
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomBytes(8)
        .toString('hex')
        .replace(/^[89a-f]/, '1'),
      name: `C=US, O=Tessera Test, CN=${trustDomain} root ${roots.length}`,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 24 * 3600_000),
      signingAlgorithm: ecdsa,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: `spiffe://${trustDomain}` },
        ]),
      ],
    })
    roots.push({ cert, keys })
  }

  async function newJwtKey(): Promise<void> {
    const pair = (await webcrypto.subtle.generateKey(ecdsa, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair
    const jwk = (await exportJWK(pair.publicKey)) as JsonWebKey
    jwtKey = { kid: randomBytes(8).toString('hex'), privateKey: pair.privateKey, jwk }
  }

  await newRoot()
  await newJwtKey()
  const jwtAuthorities: TrustBundle['jwtAuthorities'] = [
    { kid: jwtKey!.kid, publicKey: jwtKey!.jwk },
  ]

  return {
    trustDomain,
    rootDer: () => roots.map((r) => Buffer.from(r.cert.rawData)),
    async signX509(spiffeId, publicKey, ttlSeconds) {
      const signer = roots[roots.length - 1]!
      const now = clock.now()
      const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - backdateSeconds * 1000)
      const notAfter = new Date(Math.floor(now.getTime() / 1000) * 1000 + ttlSeconds * 1000)
      serialCounter += 1n
      const serial = serialCounter.toString(16).padStart(12, '0')
      const spki = publicKey.export({ type: 'spki', format: 'der' })
      const subjectKey = await webcrypto.subtle.importKey('spki', spki, ecdsa, true, ['verify'])
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: 'C=US, O=SPIRE',
        issuer: signer.cert.subject,
        notBefore,
        notAfter,
        signingAlgorithm: ecdsa,
        publicKey: subjectKey,
        signingKey: signer.keys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.digitalSignature |
              x509.KeyUsageFlags.keyEncipherment |
              x509.KeyUsageFlags.keyAgreement,
            true,
          ),
          new x509.ExtendedKeyUsageExtension([
            x509.ExtendedKeyUsage.serverAuth,
            x509.ExtendedKeyUsage.clientAuth,
          ]),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
          await x509.SubjectKeyIdentifierExtension.create(subjectKey),
          await x509.AuthorityKeyIdentifierExtension.create(signer.cert),
        ],
      })
      return {
        spiffeId,
        certChain: [Buffer.from(cert.rawData)],
        serial,
        notBefore,
        notAfter,
      }
    },
    async mintJwt(spiffeId, audience, ttlSeconds) {
      const now = clock.now()
      const iat = Math.floor(now.getTime() / 1000)
      const jti = randomBytes(16).toString('hex')
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: jwtKey.kid, typ: 'JWT' })
        .setSubject(spiffeId)
        .setAudience([...audience])
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttlSeconds)
        .setJti(jti)
        .sign(jwtKey.privateKey)
      return {
        token,
        spiffeId,
        jti,
        kid: jwtKey.kid,
        issuedAt: new Date(iat * 1000),
        expiresAt: new Date((iat + ttlSeconds) * 1000),
      }
    },
    jwtAuthorities: () => jwtAuthorities,
    async rotate() {
      await newRoot()
    },
  }
}

export interface FakeControlPort extends AgentControlPort {
  ca: TestCa
  upsertEntry(entry: Partial<RegistrationEntry> & Pick<RegistrationEntry, 'id' | 'spiffeId'>): void
  deleteEntry(id: string): void
  revoke(r: Omit<Revocation, 'createdAt'>): void
  /** Re-publishes the bundle (e.g. after `ca.rotate()`), bumping its sequence. */
  publishBundle(): void
  setConnected(up: boolean): void
  /** While set, signX509Svids waits on this promise before signing (to freeze a rotation). */
  hold: Promise<void> | undefined
  /** Every signed X.509 request: sha256 of the public key, entry, serial. */
  readonly issued: { entryId: string; keyHash: string; serial: string }[]
  readonly batches: number[]
  readonly jwtMints: number
}

export function publicKeyHash(key: KeyObject): string {
  return createHash('sha256')
    .update(
      (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' }),
    )
    .digest('hex')
}

/** An in-memory AgentControlPort over a TestCa: what src/agent/sync provides, minus the network. */
export async function createFakeControlPort(
  options: {
    trustDomain?: string
    clock?: Clock
    defaultX509Ttl?: number
    defaultJwtTtl?: number
    /** NotBefore backdating of leaves (the product CA uses 10 s). */
    backdateSeconds?: number
  } = {},
): Promise<FakeControlPort> {
  const trustDomain = options.trustDomain ?? 'example.org'
  const ca = await createTestCa(trustDomain, options.clock, options.backdateSeconds)
  const entries = new Map<string, RegistrationEntry>()
  const bundles = new Map<string, TrustBundle>()
  let revocations: Revocation[] = []
  const listeners = new Set<(what: 'entries' | 'bundles' | 'revocations') => void>()
  let up = true
  let revision = 0
  let sequence = 0
  const issued: FakeControlPort['issued'] = []
  const batches: number[] = []
  let jwtMints = 0
  const clock = options.clock ?? systemClock

  const emit = (what: 'entries' | 'bundles' | 'revocations'): void => {
    for (const l of [...listeners]) l(what)
  }
  const publish = (): void => {
    bundles.set(trustDomain, {
      trustDomain,
      x509Authorities: ca.rootDer(),
      jwtAuthorities: ca.jwtAuthorities(),
      sequence: ++sequence,
      refreshHintSeconds: 300,
    })
  }
  publish()

  const port: FakeControlPort = {
    ca,
    hold: undefined,
    issued,
    batches,
    get jwtMints() {
      return jwtMints
    },
    entries: () => entries,
    bundles: () => bundles,
    revocations: () => revocations,
    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async signX509Svids(requests) {
      if (!up) throw new Error('control plane unreachable')
      batches.push(requests.length)
      if (port.hold !== undefined) await port.hold
      if (!up) throw new Error('control plane unreachable')
      const out: X509SvidResult[] = []
      for (const r of requests) {
        const e = entries.get(r.entryId)
        if (e === undefined) throw new Error(`unknown entry ${r.entryId}`)
        const res = await ca.signX509(
          e.spiffeId,
          r.publicKey,
          e.x509SvidTtl ?? options.defaultX509Ttl ?? 3600,
        )
        issued.push({ entryId: r.entryId, keyHash: publicKeyHash(r.publicKey), serial: res.serial })
        out.push(res)
      }
      return out
    },
    async mintJwtSvid({ entryId, audience }) {
      if (!up) throw new Error('control plane unreachable')
      const e = entries.get(entryId)
      if (e === undefined) throw new Error(`unknown entry ${entryId}`)
      jwtMints++
      return ca.mintJwt(e.spiffeId, audience, e.jwtSvidTtl ?? options.defaultJwtTtl ?? 300)
    },
    connected: () => up,
    upsertEntry(partial) {
      const entry: RegistrationEntry = {
        revision: ++revision,
        parentId: `spiffe://${trustDomain}/agent/test`,
        selectors: [],
        dnsNames: [],
        federatesWith: [],
        admin: false,
        downstream: false,
        owner: 'test',
        ...partial,
      }
      entries.set(entry.id, entry)
      emit('entries')
    },
    deleteEntry(id) {
      entries.delete(id)
      emit('entries')
    },
    revoke(r) {
      revocations = [...revocations, { ...r, createdAt: clock.now() }]
      emit('revocations')
    },
    publishBundle() {
      publish()
      emit('bundles')
    },
    setConnected(v) {
      up = v
    },
  }
  return port
}
