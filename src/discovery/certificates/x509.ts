import { X509Certificate } from 'node:crypto'
import type { Collector } from '../collector.js'

/** What Tessera records of a certificate: public facts only. */
export interface CertificateFacts {
  sha256: string
  subject: string
  issuer: string
  serial: string
  notBefore: string
  notAfter: string
  keyType: string
  keySize: number | null
  selfSigned: boolean
  ca: boolean
  dns: string[]
  uris: string[]
  ips: string[]
  emails: string[]
  spiffeIds: string[]
}

const curveBits: Record<string, number> = {
  prime256v1: 256,
  'P-256': 256,
  secp256k1: 256,
  secp384r1: 384,
  'P-384': 384,
  secp521r1: 521,
  'P-521': 521,
}

/** Parses one DER or PEM certificate; throws node's error on bad input (callers wrap it). */
export function describeCertificate(input: Buffer | string): CertificateFacts {
  const cert = new X509Certificate(input)
  const key = cert.publicKey
  const details = key.asymmetricKeyDetails ?? {}
  const keyType = key.asymmetricKeyType ?? 'unknown'
  const fixedBits: Record<string, number> = { ed25519: 256, ed448: 456, x25519: 256, x448: 448 }
  const keySize =
    details.modulusLength ??
    (details.namedCurve ? curveBits[details.namedCurve] : undefined) ??
    fixedBits[keyType] ??
    null
  const sans = parseSubjectAltName(cert.subjectAltName)
  let selfSigned: boolean
  try {
    selfSigned = cert.checkIssued(cert) && cert.verify(key)
  } catch {
    selfSigned = false
  }
  return {
    sha256: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
    subject: dn(cert.subject),
    issuer: dn(cert.issuer),
    serial: cert.serialNumber.toLowerCase(),
    notBefore: cert.validFromDate.toISOString(),
    notAfter: cert.validToDate.toISOString(),
    keyType,
    keySize,
    selfSigned,
    ca: cert.ca,
    ...sans,
    spiffeIds: sans.uris.filter((u) => u.startsWith('spiffe://')),
  }
}

/** `CN=a\nO=b` (node's form) → `CN=a, O=b`. */
function dn(text: string): string {
  return text.split('\n').filter(Boolean).join(', ')
}

/**
 * Node renders SANs as `DNS:a, URI:spiffe://…, IP Address:10.0.0.1`, quoting (JSON-style) any
 * value that holds a comma or quote.
 */
export function parseSubjectAltName(
  text: string | undefined,
): Pick<CertificateFacts, 'dns' | 'uris' | 'ips' | 'emails'> {
  const out = {
    dns: [] as string[],
    uris: [] as string[],
    ips: [] as string[],
    emails: [] as string[],
  }
  if (!text) return out
  const re =
    /(DNS|URI|IP Address|email|othername|DirName|Registered ID):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g
  for (const m of text.matchAll(re)) {
    let value = m[2]!
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string
      } catch {
        continue
      }
    }
    if (m[1] === 'DNS') out.dns.push(value)
    else if (m[1] === 'URI') out.uris.push(value)
    else if (m[1] === 'IP Address') out.ips.push(value)
    else if (m[1] === 'email') out.emails.push(value)
  }
  return out
}

/**
 * A certificate as facts: a credential keyed by its SHA-256 (public, so the plain digest is its
 * fingerprint), where it was found, and, for a SPIFFE SVID, the workload identity it names.
 */
export function collectCertificate(
  c: Collector,
  facts: CertificateFacts,
  where:
    | { kind: 'file'; file: string; host?: string }
    | {
        kind: 'tls'
        endpoint: string
        host: string
        position: number
        verified: boolean
        verifyError?: string
        servername?: string
      },
  now: Date,
): void {
  const ref = `x509:${facts.sha256}`
  const spiffe = facts.spiffeIds[0]
  if (spiffe) {
    c.identity({
      ref: spiffe,
      kind: 'workload',
      name: spiffe,
      attributes: { trustDomain: new URL(spiffe).host },
    })
  }
  c.credential({
    ref,
    credentialType: 'certificate',
    fingerprint: `sha256:${facts.sha256}`,
    issuer: facts.issuer,
    createdAt: facts.notBefore,
    expiresAt: facts.notAfter,
    state: Date.parse(facts.notAfter) < now.getTime() ? 'expired' : 'active',
    ...(spiffe ? { identity: spiffe } : {}),
    attributes: {
      subject: facts.subject,
      serial: facts.serial,
      keyType: facts.keyType,
      keySize: facts.keySize,
      selfSigned: facts.selfSigned,
      ca: facts.ca,
      notBefore: facts.notBefore,
      ...(facts.dns.length ? { dns: facts.dns } : {}),
      ...(facts.uris.length ? { uris: facts.uris } : {}),
      ...(facts.ips.length ? { ips: facts.ips } : {}),
      ...(facts.emails.length ? { emails: facts.emails } : {}),
      ...(facts.spiffeIds.length ? { spiffeIds: facts.spiffeIds } : {}),
    },
  })
  if (where.kind === 'file') {
    c.location({
      credential: ref,
      locationType: 'file',
      file: where.file,
      ...(where.host ? { host: where.host } : {}),
    })
  } else {
    c.location({
      credential: ref,
      locationType: 'url',
      host: where.host,
      path: `tls://${where.endpoint}`,
      attributes: {
        chainPosition: where.position,
        verified: where.verified,
        ...(where.verifyError ? { verifyError: where.verifyError } : {}),
        ...(where.servername ? { servername: where.servername } : {}),
      },
    })
  }
}
