import {
  DerError,
  children,
  content,
  expectTag,
  readNamedBits,
  readNode,
  readOid,
  type DerNode,
} from './der.js'

/** OIDs of the X.509 extensions the SPIFFE profiles talk about. */
export const extOid = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
} as const

export const ekuOid = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' } as const

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const keyUsageBit = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const

export interface CertificateExtensions {
  /** Every extension by OID: criticality and the extnValue octets. */
  all: Map<string, { critical: boolean; value: Buffer }>
  uris: string[]
  dnsNames: string[]
  /** The SAN extension is present and critical. */
  sanCritical: boolean
  keyUsage?: { critical: boolean; bits: Set<number> }
  basicConstraints?: { critical: boolean; ca: boolean; pathLen?: number }
  extKeyUsage?: string[]
  subjectKeyId?: Buffer
  authorityKeyId?: Buffer
  /** The subject Name is an empty SEQUENCE. */
  subjectEmpty: boolean
}

/**
 * Reads the extensions of a DER certificate. Throws `DerError` on malformed input (the caller turns
 * it into its own error code); duplicate extensions are malformed (RFC 5280 §4.2).
 */
export function readCertificateExtensions(der: Buffer): CertificateExtensions {
  const cert = readNode(der, 0)
  if (cert.end !== der.length) throw new DerError('trailing bytes after the certificate')
  expectTag(cert, 0x30, 'a Certificate SEQUENCE')
  const tbs = expectTag(children(cert)[0], 0x30, 'a TBSCertificate')
  const fields = children(tbs)
  let k = 0
  if (fields[0]?.tag === 0xa0) k++ // version
  k += 4 // serial, signature, issuer, validity
  const subject = expectTag(fields[k], 0x30, 'a subject Name')
  k += 2 // subject, spki
  let extsNode: DerNode | undefined
  for (; k < fields.length; k++) if (fields[k]!.tag === 0xa3) extsNode = fields[k]
  const out: CertificateExtensions = {
    all: new Map(),
    uris: [],
    dnsNames: [],
    sanCritical: false,
    subjectEmpty: subject.end === subject.start,
  }
  if (extsNode === undefined) return out
  const list = expectTag(children(extsNode)[0], 0x30, 'an Extensions SEQUENCE')
  for (const ext of children(list)) {
    const parts = children(expectTag(ext, 0x30, 'an Extension'))
    const id = readOid(parts[0]!)
    let critical = false
    let valueNode = parts[1]
    if (valueNode?.tag === 0x01) {
      critical = content(valueNode)[0] === 0xff
      valueNode = parts[2]
    }
    const value = content(expectTag(valueNode, 0x04, 'an extnValue OCTET STRING'))
    if (out.all.has(id)) throw new DerError(`extension ${id} appears twice`)
    out.all.set(id, { critical, value })
    const inner = readNode(value, 0)
    if (inner.end !== value.length) throw new DerError(`trailing bytes in extension ${id}`)
    switch (id) {
      case extOid.subjectAltName:
        out.sanCritical = critical
        for (const name of children(expectTag(inner, 0x30, 'GeneralNames'))) {
          if (name.tag === 0x86) out.uris.push(content(name).toString('latin1'))
          else if (name.tag === 0x82) out.dnsNames.push(content(name).toString('latin1'))
        }
        break
      case extOid.keyUsage:
        out.keyUsage = { critical, bits: readNamedBits(inner) }
        break
      case extOid.basicConstraints: {
        const bc = children(expectTag(inner, 0x30, 'BasicConstraints'))
        let ca = false
        let pathLen: number | undefined
        for (const item of bc) {
          if (item.tag === 0x01) ca = content(item)[0] === 0xff
          else if (item.tag === 0x02) {
            const n = item.end - item.start
            if (n < 1 || n > 6) throw new DerError('bad pathLenConstraint')
            pathLen = content(item).readUIntBE(0, n)
          }
        }
        out.basicConstraints = { critical, ca, ...(pathLen === undefined ? {} : { pathLen }) }
        break
      }
      case extOid.extKeyUsage:
        out.extKeyUsage = children(expectTag(inner, 0x30, 'ExtKeyUsageSyntax')).map(readOid)
        break
      case extOid.subjectKeyIdentifier:
        out.subjectKeyId = Buffer.from(content(expectTag(inner, 0x04, 'a key identifier')))
        break
      case extOid.authorityKeyIdentifier:
        for (const item of children(expectTag(inner, 0x30, 'AuthorityKeyIdentifier'))) {
          if (item.tag === 0x80) out.authorityKeyId = Buffer.from(content(item))
        }
        break
    }
  }
  return out
}
