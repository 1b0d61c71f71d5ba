import { X509Certificate, hash, sign, type KeyObject } from 'node:crypto'
import {
  bitString,
  boolTrue,
  children,
  content,
  explicit,
  implicitPrimitive,
  namedBits,
  octetString,
  oid,
  readNode,
  seq,
  set,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
  utf8String,
  whole,
} from '../spiffe/der.js'
import { ekuOid, extOid, keyUsageBit, readCertificateExtensions } from '../spiffe/x509-ext.js'

/**
 * A minimal DER template for the two certificate profiles of SPIFFE X509-SVID §4 (leaf and signing
 * CA). A general X.509 library was measured at about 1% of the raw `crypto.sign` P-256 rate (see
 * docs/benchmarks.md); these certificates have a fixed shape, so the constant parts are encoded once
 * per issuer and each leaf costs one TBSCertificate concatenation and one signature.
 */

const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'))
const ecdsaWithSha384 = seq(oid('1.2.840.10045.4.3.3'))
const version3 = explicit(0, tlv(0x02, Buffer.from([2])))

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), boolTrue, octetString(value)) : seq(oid(id), octetString(value))
}

/** Leaf KeyUsage: critical, digitalSignature only (no keyCertSign/cRLSign). */
const leafKeyUsage = extension(extOid.keyUsage, true, namedBits([keyUsageBit.digitalSignature]))
/** CA KeyUsage: critical keyCertSign and cRLSign. */
const caKeyUsage = extension(
  extOid.keyUsage,
  true,
  namedBits([keyUsageBit.keyCertSign, keyUsageBit.cRLSign]),
)
const leafBasicConstraints = extension(extOid.basicConstraints, true, seq())
const caBasicConstraints = extension(extOid.basicConstraints, true, seq(boolTrue))
const leafEku = extension(
  extOid.extKeyUsage,
  false,
  seq(oid(ekuOid.serverAuth), oid(ekuOid.clientAuth)),
)

/** A SubjectKeyIdentifier extension up to its 20 key-id bytes (SHA-1 length). */
const skidPrefix = (() => {
  const full = extension(extOid.subjectKeyIdentifier, false, octetString(Buffer.alloc(20)))
  return full.subarray(0, full.length - 20)
})()

/** The few distinct validity times of a batch are encoded once. */
const timeCache = new Map<number, Buffer>()
function cachedTime(d: Date): Buffer {
  const key = Math.floor(d.getTime() / 1000)
  let der = timeCache.get(key)
  if (der === undefined) {
    if (timeCache.size >= 64) timeCache.clear()
    der = time(d)
    timeCache.set(key, der)
  }
  return der
}

const sanOid = oid(extOid.subjectAltName)

function sanExtension(uri: string, dnsNames: readonly string[]): Buffer {
  if (dnsNames.length === 0) {
    return seq(sanOid, octetString(seq(implicitPrimitive(6, Buffer.from(uri, 'latin1')))))
  }
  const names = [implicitPrimitive(6, Buffer.from(uri, 'latin1'))]
  for (const dns of dnsNames) names.push(implicitPrimitive(2, Buffer.from(dns, 'latin1')))
  return extension(extOid.subjectAltName, false, seq(...names))
}

const p256SpkiPrefix = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex')

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spki: Buffer): Buffer {
  // Fast path for the common P-256 SPKI: the 65-byte point ends the 91-byte structure.
  if (spki.length === 91 && spki.subarray(0, 26).equals(p256SpkiPrefix)) {
    return hash('sha1', spki.subarray(26), 'buffer')
  }
  const parts = children(readNode(spki, 0))
  return hash('sha1', content(parts[1]!).subarray(1), 'buffer')
}

const ecSpkiPrefix: Record<string, Buffer> = {
  'P-256': p256SpkiPrefix,
  'P-384': Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'),
}

/**
 * The SubjectPublicKeyInfo DER of a public key. For EC keys it is assembled from the JWK export,
 * which costs about a quarter of `export({ type: 'spki' })` (measured 48 µs vs 212 µs for P-256).
 */
export function spkiDer(publicKey: KeyObject): Buffer {
  if (publicKey.asymmetricKeyType === 'ec') {
    const jwk = publicKey.export({ format: 'jwk' })
    const prefix = jwk.crv === undefined ? undefined : ecSpkiPrefix[jwk.crv]
    if (prefix && jwk.x && jwk.y) {
      return Buffer.concat([
        prefix,
        Buffer.from([4]),
        Buffer.from(jwk.x, 'base64url'),
        Buffer.from(jwk.y, 'base64url'),
      ])
    }
  }
  return publicKey.export({ type: 'spki', format: 'der' })
}

/** A Name with an organisation and a common name (both UTF8String). */
export function distinguishedName(organisation: string, commonName?: string): Buffer {
  const rdns = [set(seq(oid('2.5.4.10'), utf8String(organisation)))]
  if (commonName !== undefined) rdns.push(set(seq(oid('2.5.4.3'), utf8String(commonName))))
  return seq(...rdns)
}

/** The raw DER subject Name of a certificate (to use as an issuer Name). */
export function subjectNameDer(certDer: Buffer): Buffer {
  const tbs = children(readNode(certDer, 0))[0]!
  const fields = children(tbs)
  const k = fields[0]!.tag === 0xa0 ? 1 : 0
  return Buffer.from(whole(fields[k + 4]!))
}

/** The key that signs certificates, with what a child certificate needs to name it. */
export interface Issuer {
  /** The issuer's subject Name, DER. */
  name: Buffer
  /** Its subject key identifier (for the child's AKID), if it has one. */
  keyId?: Buffer
  privateKey: KeyObject
  notAfter: Date
}

export function issuerFromCertificate(certDer: Buffer, privateKey: KeyObject): Issuer {
  const cert = new X509Certificate(certDer)
  const ext = readCertificateExtensions(certDer)
  return {
    name: subjectNameDer(certDer),
    ...(ext.subjectKeyId ? { keyId: ext.subjectKeyId } : {}),
    privateKey,
    notAfter: new Date(cert.validTo),
  }
}

function signatureAlgorithm(key: KeyObject): Buffer {
  const curve = key.asymmetricKeyDetails?.namedCurve
  return curve === 'secp384r1' ? ecdsaWithSha384 : ecdsaWithSha256
}

function signTbs(tbs: Buffer, issuer: Issuer, alg: Buffer): Buffer {
  const hash = alg === ecdsaWithSha384 ? 'sha384' : 'sha256'
  const signature = sign(hash, tbs, issuer.privateKey)
  return seq(tbs, alg, bitString(signature))
}

/** Positive serial from 16 random bytes (top bit cleared); returns its DER and lower-case hex. */
export function serialFrom(random: Buffer): { der: Buffer; hex: string } {
  const bytes = Buffer.from(random.subarray(0, 16))
  bytes[0]! &= 0x7f
  if (bytes[0] === 0) bytes[0] = 0x01 // keep 16 significant bytes: no leading zero to strip
  return { der: unsignedInteger(bytes), hex: bytes.toString('hex') }
}

/** A prepared signer of leaves for one issuer: the constant DER is encoded once. */
export interface LeafSigner {
  sign(input: {
    spiffeId: string
    dnsNames?: readonly string[]
    spki: Buffer
    serial: Buffer
    notBefore: Date
    notAfter: Date
  }): Buffer
}

export function createLeafSigner(issuer: Issuer): LeafSigner {
  const alg = signatureAlgorithm(issuer.privateKey)
  const akid = issuer.keyId
    ? extension(extOid.authorityKeyIdentifier, false, seq(implicitPrimitive(0, issuer.keyId)))
    : Buffer.alloc(0)
  const subject = distinguishedName('Tessera')
  const head = Buffer.concat([version3])
  const fixedExts = Buffer.concat([leafBasicConstraints, leafKeyUsage, leafEku, akid])
  return {
    sign(input) {
      const skid = Buffer.concat([skidPrefix, keyIdentifier(input.spki)])
      const san = sanExtension(input.spiffeId, input.dnsNames ?? [])
      const exts = explicit(3, tlv(0x30, Buffer.concat([fixedExts, skid, san])))
      const tbs = seq(
        head,
        input.serial,
        alg,
        issuer.name,
        seq(cachedTime(input.notBefore), cachedTime(input.notAfter)),
        subject,
        input.spki,
        exts,
      )
      return signTbs(tbs, issuer, alg)
    },
  }
}

/**
 * A signing CA certificate: cA=true (critical), KeyUsage keyCertSign+cRLSign (critical), the trust
 * domain's SPIFFE ID (no path) as URI SAN, SKID, and AKID naming the issuer's key. Self-signed when
 * `issuer` is omitted (the subject's own key signs it).
 */
export function signCaCertificate(input: {
  trustDomainId: string
  subject: Buffer
  publicKey: KeyObject
  serial: Buffer
  notBefore: Date
  notAfter: Date
  /** Omitted: self-signed with `selfKey`. */
  issuer?: Issuer
  selfKey?: KeyObject
}): Buffer {
  const spki = spkiDer(input.publicKey)
  const skid = keyIdentifier(spki)
  const issuer: Issuer = input.issuer ?? {
    name: input.subject,
    keyId: skid,
    privateKey: input.selfKey!,
    notAfter: input.notAfter,
  }
  const alg = signatureAlgorithm(issuer.privateKey)
  const exts = Buffer.concat([
    caBasicConstraints,
    caKeyUsage,
    extension(extOid.subjectKeyIdentifier, false, octetString(skid)),
    issuer.keyId
      ? extension(extOid.authorityKeyIdentifier, false, seq(implicitPrimitive(0, issuer.keyId)))
      : Buffer.alloc(0),
    sanExtension(input.trustDomainId, []),
  ])
  const tbs = seq(
    version3,
    input.serial,
    alg,
    issuer.name,
    seq(time(input.notBefore), time(input.notAfter)),
    input.subject,
    spki,
    explicit(3, tlv(0x30, exts)),
  )
  return signTbs(tbs, issuer, alg)
}

export { smallInteger }
