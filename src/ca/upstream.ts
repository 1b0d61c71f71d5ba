import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { TesseraError } from '../errors.js'
import { readCertificateExtensions } from '../spiffe/x509-ext.js'

/**
 * An upstream CA that signs this trust domain's CA certificates (which then become intermediates).
 * `chain` starts with the upstream signing certificate and may continue up to its root; `roots` are
 * the trust anchors published in the bundle.
 */
export interface UpstreamCa {
  chain: Buffer[]
  privateKey: KeyObject
  roots: Buffer[]
}

/** Splits PEM text into DER certificates. */
export function pemCertificates(text: string): Buffer[] {
  const out: Buffer[] = []
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'))
  }
  return out
}

export function toPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n')
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`
}

function isSelfSigned(der: Buffer): boolean {
  const cert = new X509Certificate(der)
  return cert.checkIssued(cert) && cert.verify(cert.publicKey)
}

/**
 * Checks an upstream CA given as PEM text: the key is an unencrypted EC P-256/P-384 private key
 * matching the first certificate, which is a CA allowed to sign certificates. Without explicit
 * `rootsPem`, the chain must end with a self-signed root, which becomes the trust anchor.
 */
export function parseUpstreamCa(certPem: string, keyPem: string, rootsPem?: string): UpstreamCa {
  const chain = pemCertificates(certPem)
  if (chain.length === 0)
    throw new TesseraError('TSR_CONFIG', 'the upstream CA certificate file has no PEM certificate')
  let privateKey: KeyObject
  let first: X509Certificate
  try {
    privateKey = createPrivateKey(keyPem)
    first = new X509Certificate(chain[0]!)
  } catch (err) {
    throw new TesseraError(
      'TSR_CONFIG',
      'the upstream CA certificate or key cannot be read (the key must be unencrypted PEM)',
      { cause: err },
    )
  }
  const curve = privateKey.asymmetricKeyDetails?.namedCurve
  if (privateKey.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'secp384r1')) {
    throw new TesseraError('TSR_CONFIG', 'the upstream CA key must be ECDSA P-256 or P-384')
  }
  if (!first.checkPrivateKey(privateKey)) {
    throw new TesseraError('TSR_CONFIG', 'the upstream CA key does not match its certificate')
  }
  const ext = readCertificateExtensions(chain[0]!)
  if (!ext.basicConstraints?.ca || (ext.keyUsage && !ext.keyUsage.bits.has(5))) {
    throw new TesseraError(
      'TSR_CONFIG',
      'the upstream certificate is not a CA allowed to sign certificates',
    )
  }
  const roots = rootsPem === undefined ? chain.filter(isSelfSigned) : pemCertificates(rootsPem)
  if (roots.length === 0) {
    throw new TesseraError(
      'TSR_CONFIG',
      'the upstream chain does not end with a self-signed root; give the root bundle too',
    )
  }
  return { chain, privateKey, roots }
}

export function loadUpstreamCa(files: {
  certFile: string
  keyFile: string
  bundleFile?: string
}): UpstreamCa {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8')
    } catch (err) {
      throw new TesseraError('TSR_CONFIG', `cannot read ${path}`, { cause: err })
    }
  }
  return parseUpstreamCa(
    read(files.certFile),
    read(files.keyFile),
    files.bundleFile === undefined ? undefined : read(files.bundleFile),
  )
}

export function upstreamIntermediates(upstream: UpstreamCa): Buffer[] {
  return upstream.chain.filter((der) => !upstream.roots.some((r) => r.equals(der)))
}
