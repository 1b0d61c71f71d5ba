import { X509Certificate } from 'node:crypto'
import { TesseraError } from '../errors.js'
import { parseSpiffeId, type SpiffeId } from './id.js'
import type { TrustBundle } from './types.js'
import {
  ekuOid,
  keyUsageBit,
  readCertificateExtensions,
  type CertificateExtensions,
} from './x509-ext.js'
import { DerError } from './der.js'

/**
 * X509-SVID validation for relying parties (spiffe/spiffe standards/X509-SVID.md §5): the leaf's
 * SPIFFE ID names its trust domain, whose bundle (and only that one) anchors the chain; every
 * certificate on the path must be in its validity window and signed by the next; intermediates must
 * be CAs allowed to sign certificates; the leaf must match the leaf profile. Pure (the time is
 * passed in).
 */

export interface ValidatedX509Svid {
  spiffeId: string
  id: SpiffeId
  leaf: X509Certificate
  /** The verified path, leaf first, ending with the bundle authority that anchors it. */
  path: X509Certificate[]
}

/** Longest chain followed (leaf + intermediates). */
const maxPathLength = 8

function bad(message: string, reason: string): TesseraError {
  return new TesseraError('TSR_X509_SVID_INVALID', message, { details: { reason } })
}

function parseCert(
  der: Buffer,
  what: string,
): { cert: X509Certificate; ext: CertificateExtensions } {
  try {
    return { cert: new X509Certificate(der), ext: readCertificateExtensions(der) }
  } catch (err) {
    const why = err instanceof DerError ? `: ${err.message}` : ''
    throw bad(`${what} is not a DER certificate${why}`, 'malformed')
  }
}

/** Leaf rules of X509-SVID §4 and §5. Returns the SPIFFE ID. */
export function checkLeafProfile(ext: CertificateExtensions): SpiffeId {
  if (ext.uris.length !== 1) {
    throw bad(
      `an X509-SVID has exactly one URI SAN (this one has ${ext.uris.length})`,
      'uri-san-count',
    )
  }
  let id: SpiffeId
  try {
    id = parseSpiffeId(ext.uris[0]!)
  } catch (err) {
    throw bad(`the URI SAN is not a SPIFFE ID: ${(err as Error).message}`, 'uri-san-not-spiffe')
  }
  if (id.path === '') throw bad('a leaf SVID has a SPIFFE ID with a path', 'root-path')
  if (ext.basicConstraints?.ca) throw bad('a leaf SVID has cA=false', 'leaf-is-ca')
  if (!ext.keyUsage) throw bad('a leaf SVID has a KeyUsage extension', 'key-usage-missing')
  if (!ext.keyUsage.critical)
    throw bad('the KeyUsage extension is critical', 'key-usage-not-critical')
  if (!ext.keyUsage.bits.has(keyUsageBit.digitalSignature)) {
    throw bad('a leaf SVID has the digitalSignature key usage', 'no-digital-signature')
  }
  if (
    ext.keyUsage.bits.has(keyUsageBit.keyCertSign) ||
    ext.keyUsage.bits.has(keyUsageBit.cRLSign)
  ) {
    throw bad('a leaf SVID has neither keyCertSign nor cRLSign', 'leaf-signs')
  }
  if (ext.extKeyUsage) {
    for (const needed of [ekuOid.serverAuth, ekuOid.clientAuth]) {
      if (!ext.extKeyUsage.includes(needed)) {
        throw bad('an EKU, when present, has serverAuth and clientAuth', 'eku')
      }
    }
  }
  if (ext.subjectEmpty && !ext.sanCritical) {
    throw bad('with an empty subject the SAN extension is critical', 'san-not-critical')
  }
  return id
}

function inWindow(cert: X509Certificate, now: Date, what: string): void {
  const t = now.getTime()
  if (t < new Date(cert.validFrom).getTime()) throw bad(`${what} is not valid yet`, 'not-yet-valid')
  if (t > new Date(cert.validTo).getTime()) throw bad(`${what} has expired`, 'expired')
}

function issued(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey)
  } catch {
    return false
  }
}

/**
 * Validates `chain` (leaf first, then any intermediates, DER) against the bundle of the leaf's trust
 * domain. `bundles` is one bundle or a map by trust domain.
 */
export function validateX509Svid(
  chain: readonly Buffer[],
  bundles: TrustBundle | ReadonlyMap<string, TrustBundle>,
  now: Date,
): ValidatedX509Svid {
  if (chain.length === 0) throw bad('the chain is empty', 'empty')
  if (chain.length > maxPathLength) throw bad('the chain is too long', 'too-long')
  const leaf = parseCert(chain[0]!, 'the leaf')
  const id = checkLeafProfile(leaf.ext)
  const bundle =
    'x509Authorities' in bundles
      ? bundles
      : (bundles as ReadonlyMap<string, TrustBundle>).get(id.trustDomain)
  if (bundle === undefined || bundle.trustDomain !== id.trustDomain) {
    throw bad(`no bundle for the trust domain ${id.trustDomain}`, 'no-bundle')
  }
  const intermediates = chain.slice(1).map((der, k) => parseCert(der, `certificate ${k + 1}`))
  const roots = bundle.x509Authorities.map((der, k) => parseCert(der, `bundle authority ${k}`))
  inWindow(leaf.cert, now, 'the leaf')
  const path: X509Certificate[] = [leaf.cert]
  let current = leaf.cert
  const used = new Set<number>()
  for (let depth = 0; depth <= intermediates.length; depth++) {
    const root = roots.find((r) => issued(current, r.cert))
    if (root) {
      inWindow(root.cert, now, 'the bundle authority')
      path.push(root.cert)
      return { spiffeId: ext0(leaf.ext), id, leaf: leaf.cert, path }
    }
    const k = intermediates.findIndex((c, idx) => !used.has(idx) && issued(current, c.cert))
    if (k === -1) break
    const next = intermediates[k]!
    used.add(k)
    if (!next.ext.basicConstraints?.ca)
      throw bad('an intermediate is not a CA', 'intermediate-not-ca')
    if (next.ext.keyUsage && !next.ext.keyUsage.bits.has(keyUsageBit.keyCertSign)) {
      throw bad('an intermediate may not sign certificates', 'intermediate-no-cert-sign')
    }
    const pathLen = next.ext.basicConstraints.pathLen
    if (pathLen !== undefined && depth > pathLen) {
      throw bad('an intermediate pathLenConstraint is exceeded', 'path-length')
    }
    inWindow(next.cert, now, 'an intermediate')
    path.push(next.cert)
    current = next.cert
  }
  throw bad(`the chain does not lead to an authority of the ${id.trustDomain} bundle`, 'untrusted')
}

function ext0(ext: CertificateExtensions): string {
  return ext.uris[0]!
}
