import { X509Certificate } from 'node:crypto'

/** Largest chain and certificate we parse from untrusted input. */
export const chainLimits = { certificates: 8, certificateBytes: 16 * 1024 } as const

/** Parses base64 DER certificates; returns a reason instead of throwing. */
export function parseCertChain(value: unknown): X509Certificate[] | string {
  if (!Array.isArray(value) || value.length === 0) return 'certChain must be a non-empty list'
  if (value.length > chainLimits.certificates) {
    return `certChain holds at most ${chainLimits.certificates} certificates`
  }
  const certs: X509Certificate[] = []
  for (const item of value) {
    if (typeof item !== 'string' || item.length > (chainLimits.certificateBytes * 4) / 3 + 4) {
      return 'certChain items must be base64 DER certificates'
    }
    try {
      certs.push(new X509Certificate(Buffer.from(item, 'base64')))
    } catch {
      return 'certChain holds something that is not a DER certificate'
    }
  }
  return certs
}

/**
 * RFC 5280 path building, reduced to what SPIFFE chains need: each certificate is issued and
 * signed by the next one, intermediates are CAs, every certificate is valid at `now`, and the last
 * one is issued by one of `roots`. Returns the root that anchors the chain, or a reason.
 */
export function verifyChain(
  chain: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: Date,
): { ok: true; root: X509Certificate } | { ok: false; reason: string } {
  const t = now.getTime()
  const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= t && t <= Date.parse(c.validTo)
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!
    if (!valid(cert)) return { ok: false, reason: `certificate ${i} is expired or not yet valid` }
    if (i > 0 && !cert.ca) return { ok: false, reason: `certificate ${i} is not a CA` }
    const issuer = chain[i + 1]
    if (issuer && !(cert.checkIssued(issuer) && cert.verify(issuer.publicKey))) {
      return { ok: false, reason: `certificate ${i} is not signed by certificate ${i + 1}` }
    }
  }
  const top = chain[chain.length - 1]!
  for (const root of roots) {
    if (!valid(root)) continue
    if (top.fingerprint256 === root.fingerprint256) return { ok: true, root }
    if (top.checkIssued(root) && top.verify(root.publicKey)) return { ok: true, root }
  }
  return { ok: false, reason: 'the chain does not lead to a trusted root' }
}

/** The URI SANs of a certificate (`subjectAltName` as node prints it). */
export function uriSans(cert: X509Certificate): string[] {
  return sanValues(cert, 'URI')
}

export function sanValues(cert: X509Certificate, kind: 'URI' | 'DNS'): string[] {
  const san = cert.subjectAltName
  if (!san) return []
  const out: string[] = []
  // Node quotes values holding commas as JSON strings: `URI:"a,b"`.
  const re = new RegExp(`(?:^|, )${kind}:("(?:[^"\\\\]|\\\\.)*"|[^,]*)`, 'g')
  for (const m of san.matchAll(re)) {
    const raw = m[1]!
    out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw)
  }
  return out
}
