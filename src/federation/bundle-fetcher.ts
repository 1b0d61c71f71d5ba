import { X509Certificate } from 'node:crypto'
import { request } from 'node:https'
import { rootCertificates, type PeerCertificate } from 'node:tls'
import { TesseraError } from '../errors.js'
import type { BundleFetcher } from './federation.js'

export interface BundleFetcherOptions {
  /** Extra roots for https_web endpoints (PEM), besides Node's bundled Web PKI roots. */
  extraWebRoots?: readonly string[]
  timeoutMs?: number
  /** Largest bundle document accepted. */
  maxBytes?: number
}

/**
 * Fetches bundle documents over HTTPS, authenticating the endpoint by its profile:
 * - `https_web`: ordinary Web PKI, the certificate must match the URL's host;
 * - `https_spiffe`: the certificate must chain to the given SPIFFE roots and carry exactly one URI
 *   SAN, the relationship's endpoint SPIFFE ID; the host name is not what is trusted.
 */
export function createBundleFetcher(options: BundleFetcherOptions = {}): BundleFetcher {
  const timeoutMs = options.timeoutMs ?? 10_000
  const maxBytes = options.maxBytes ?? 1024 * 1024
  const webRoots = options.extraWebRoots?.length
    ? [...rootCertificates, ...options.extraWebRoots]
    : undefined

  return (rel, anchors) =>
    new Promise<string>((resolve, reject) => {
      const url = new URL(rel.bundleEndpointUrl)
      const spiffe = rel.profile === 'https_spiffe'
      if (spiffe && (!anchors || anchors.length === 0)) {
        reject(new TesseraError('TSR_VALIDATION', 'https_spiffe needs roots to check against'))
        return
      }
      const fail = (message: string, cause?: unknown) =>
        reject(
          new TesseraError('TSR_CLIENT_HTTP', `bundle endpoint ${url.origin}: ${message}`, {
            ...(cause === undefined ? {} : { cause }),
          }),
        )
      const req = request(
        url,
        {
          method: 'GET',
          headers: { accept: 'application/json' },
          timeout: timeoutMs,
          ...(spiffe
            ? {
                ca: anchors!.map((der) => new X509Certificate(der).toString()),
                checkServerIdentity: (_host: string, cert: PeerCertificate) =>
                  checkSpiffeServer(cert, rel.endpointSpiffeId!),
              }
            : webRoots
              ? { ca: webRoots }
              : {}),
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume()
            fail(`answered HTTP ${res.statusCode}`)
            return
          }
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > maxBytes) {
              req.destroy()
              fail(`bundle larger than ${maxBytes} bytes`)
              return
            }
            chunks.push(chunk)
          })
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
          res.on('error', (err) => fail(err.message, err))
        },
      )
      req.on('timeout', () => {
        req.destroy()
        fail(`no answer within ${timeoutMs} ms`)
      })
      req.on('error', (err) => fail(err.message, err))
      req.end()
    })
}

/** The endpoint's certificate must name exactly one SPIFFE ID, the expected one. */
export function checkSpiffeServer(cert: PeerCertificate, expected: string): Error | undefined {
  const uris = (cert.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4))
  if (uris.length !== 1) {
    return new Error(
      `the endpoint certificate has ${uris.length} URI SANs; an SVID has exactly one`,
    )
  }
  if (uris[0] !== expected) {
    return new Error(`the endpoint presented ${uris[0]}, not ${expected}`)
  }
  return undefined
}
