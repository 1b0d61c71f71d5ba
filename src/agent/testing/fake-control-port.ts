import 'reflect-metadata'
import {
  createHash,
  createPublicKey,
  randomBytes,
  webcrypto,
  KeyObject,
  sign,
  type JsonWebKey,
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
  /** `publicKey`: a KeyObject or SPKI DER. */
  signX509(
    spiffeId: string,
    publicKey: KeyObject | Uint8Array,
    ttlSeconds: number,
  ): Promise<X509SvidResult>
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
  const roots: {
    cert: x509.X509Certificate
    keys: webcrypto.CryptoKeyPair
    privateKey: KeyObject
    subjectDer: Buffer
    keyId: Buffer
  }[] = []
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
    roots.push({
      cert,
      keys,
      privateKey: KeyObject.from(keys.privateKey),
      subjectDer: Buffer.from(cert.subjectName.toArrayBuffer()),
      keyId: Buffer.from(cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId, 'hex'),
    })
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
      const der = buildLeafDer({
        serialHex: serial,
        issuerDer: signer.subjectDer,
        authorityKeyId: signer.keyId,
        notBefore,
        notAfter,
        spki: spkiBytes(publicKey),
        spiffeId,
        signingKey: signer.privateKey,
      })
      return {
        spiffeId,
        certChain: [der],
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

function spkiBytes(key: KeyObject | Uint8Array): Buffer {
  return key instanceof Uint8Array
    ? Buffer.from(key.buffer, key.byteOffset, key.byteLength)
    : key.export({ type: 'spki', format: 'der' })
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
        const spki = spkiBytes(r.publicKey)
        const keyHash = createHash('sha256').update(spki).digest('hex')
        issued.push({ entryId: r.entryId, keyHash, serial: res.serial })
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

// ---- a tiny DER builder for leaves: @peculiar/x509 is far too slow for the 10,000-SVID storm ----

function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}
const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content)
  return Buffer.concat([Buffer.from([tag]), derLen(body.length), body])
}
const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c)
function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number)
  const out = [40 * arcs[0]! + arcs[1]!]
  for (const arc of arcs.slice(2)) {
    const b: number[] = [arc & 0x7f]
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) b.unshift(0x80 | (v & 0x7f))
    out.push(...b)
  }
  return tlv(0x06, Buffer.from(out))
}
function intFromHex(hex: string): Buffer {
  let b = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex')
  let i = 0
  while (i < b.length - 1 && b[i] === 0) i++
  b = b.subarray(i)
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b])
  return tlv(0x02, b)
}
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z' // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii'))
    : tlv(0x18, Buffer.from(iso, 'ascii'))
}
const ext = (id: string, critical: boolean, value: Buffer): Buffer =>
  seq(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), tlv(0x04, value))

const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'))
const leafSubject = seq(
  tlv(0x31, seq(oid('2.5.4.6'), tlv(0x13, Buffer.from('US')))),
  tlv(0x31, seq(oid('2.5.4.10'), tlv(0x0c, Buffer.from('SPIRE')))),
)
const staticLeafExtensions = [
  ext('2.5.29.19', true, seq()), // basicConstraints: cA false
  // keyUsage: digitalSignature, keyEncipherment, keyAgreement (bits 0, 2, 4)
  ext('2.5.29.15', true, tlv(0x03, Buffer.from([0x03, 0xa8]))),
  ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))),
]

/** An X509-SVID leaf (SPIFFE profile), DER, signed ECDSA P-256/SHA-256 by `signingKey`. */
export function buildLeafDer(o: {
  serialHex: string
  issuerDer: Buffer
  authorityKeyId: Buffer
  notBefore: Date
  notAfter: Date
  spki: Buffer
  spiffeId: string
  signingKey: KeyObject
}): Buffer {
  // subjectPublicKey BIT STRING contents are the last 65 bytes of a P-256 SPKI.
  const keyId = createHash('sha1')
    .update(o.spki.subarray(o.spki.length - 65))
    .digest()
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    intFromHex(o.serialHex),
    ecdsaWithSha256,
    o.issuerDer,
    seq(time(o.notBefore), time(o.notAfter)),
    leafSubject,
    o.spki,
    tlv(
      0xa3,
      seq(
        ...staticLeafExtensions,
        ext('2.5.29.17', false, seq(tlv(0x86, Buffer.from(o.spiffeId, 'ascii')))),
        ext('2.5.29.14', false, tlv(0x04, keyId)),
        ext('2.5.29.35', false, seq(tlv(0x80, o.authorityKeyId))),
      ),
    ),
  )
  const sig = sign('sha256', tbs, o.signingKey)
  return seq(tbs, ecdsaWithSha256, tlv(0x03, Buffer.from([0]), sig))
}
