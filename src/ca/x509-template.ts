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
  const head = version3
  const fixedExts = Buffer.concat([leafBasicConstraints, leafKeyUsage, leafEku, akid])
  const hashName = alg === ecdsaWithSha384 ? 'sha384' : 'sha256'
  // Everything before the validity and between validity and the SPKI is constant for the issuer.
  const before = head
  const afterSerial = Buffer.concat([alg, issuer.name])
  return {
    sign(input) {
      // One pass into one buffer: lengths first, then bytes (a leaf is about 450 bytes and the
      // nested concatenations of the generic encoder cost a good part of a signature).
      const uri = Buffer.from(input.spiffeId, 'latin1')
      const dns = (input.dnsNames ?? []).map((d) => Buffer.from(d, 'latin1'))
      let namesLen = tlvLen(uri.length)
      for (const d of dns) namesLen += tlvLen(d.length)
      const sanValueLen = tlvLen(namesLen) // GeneralNames SEQUENCE
      const sanLen = tlvLen(sanOid.length + tlvLen(sanValueLen))
      const skidLen = skidPrefix.length + 20
      const extsSeqLen = tlvLen(fixedExts.length + skidLen + sanLen)
      const extsLen = tlvLen(extsSeqLen)
      const nb = cachedTime(input.notBefore)
      const na = cachedTime(input.notAfter)
      const validityLen = tlvLen(nb.length + na.length)
      const tbsContent =
        before.length +
        input.serial.length +
        afterSerial.length +
        validityLen +
        subject.length +
        input.spki.length +
        extsLen
      const tbs = Buffer.allocUnsafe(tlvLen(tbsContent))
      let at = writeHeader(tbs, 0, 0x30, tbsContent)
      at += before.copy(tbs, at)
      at += input.serial.copy(tbs, at)
      at += afterSerial.copy(tbs, at)
      at = writeHeader(tbs, at, 0x30, nb.length + na.length)
      at += nb.copy(tbs, at)
      at += na.copy(tbs, at)
      at += subject.copy(tbs, at)
      at += input.spki.copy(tbs, at)
      at = writeHeader(tbs, at, 0xa3, extsSeqLen)
      at = writeHeader(tbs, at, 0x30, fixedExts.length + skidLen + sanLen)
      at += fixedExts.copy(tbs, at)
      at += skidPrefix.copy(tbs, at)
      at += keyIdentifier(input.spki).copy(tbs, at)
      at = writeHeader(tbs, at, 0x30, sanOid.length + tlvLen(sanValueLen))
      at += sanOid.copy(tbs, at)
      at = writeHeader(tbs, at, 0x04, sanValueLen)
      at = writeHeader(tbs, at, 0x30, namesLen)
      at = writeHeader(tbs, at, 0x86, uri.length)
      at += uri.copy(tbs, at)
      for (const d of dns) {
        at = writeHeader(tbs, at, 0x82, d.length)
        at += d.copy(tbs, at)
      }
      const signature = sign(hashName, tbs, issuer.privateKey)
      const sigLen = tlvLen(signature.length + 1)
      const certContent = tbs.length + alg.length + sigLen
      const cert = Buffer.allocUnsafe(tlvLen(certContent))
      let c = writeHeader(cert, 0, 0x30, certContent)
      c += tbs.copy(cert, c)
      c += alg.copy(cert, c)
      c = writeHeader(cert, c, 0x03, signature.length + 1)
      cert[c++] = 0
      signature.copy(cert, c)
      return cert
    },
  }
}

/** Bytes of a whole TLV (single-byte tag) with `n` content bytes. */
function tlvLen(n: number): number {
  return 1 + (n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4) + n
}

/** Writes a tag and a DER length at `at`; returns the offset after them. */
function writeHeader(buf: Buffer, at: number, tag: number, n: number): number {
  buf[at++] = tag
  if (n < 0x80) buf[at++] = n
  else if (n < 0x100) {
    buf[at++] = 0x81
    buf[at++] = n
  } else if (n < 0x10000) {
    buf[at++] = 0x82
    buf[at++] = n >> 8
    buf[at++] = n & 0xff
  } else {
    buf[at++] = 0x83
    buf[at++] = n >> 16
    buf[at++] = (n >> 8) & 0xff
    buf[at++] = n & 0xff
  }
  return at
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
