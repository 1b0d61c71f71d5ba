import { isIP } from 'node:net'
import { connect, type DetailedPeerCertificate } from 'node:tls'
import { TesseraError } from '../../errors.js'
import type { TlsChain, TlsProbe, TlsTarget } from '../connector.js'

/**
 * Reads the chain a TLS endpoint serves, with node:tls. Verification is not enforced (an expired
 * or self-signed certificate is exactly what discovery wants to see) but its outcome is recorded.
 */
export const nodeTlsProbe: TlsProbe = {
  fetchChain(target: TlsTarget): Promise<TlsChain> {
    const endpoint = `${target.host}:${target.port}`
    const servername = target.servername ?? (isIP(target.host) ? undefined : target.host)
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: target.host,
        port: target.port,
        ...(servername ? { servername } : {}),
        rejectUnauthorized: false,
        ...(target.ca ? { ca: target.ca } : {}),
        ALPNProtocols: ['http/1.1'],
      })
      const fail = (why: string, cause?: unknown) => {
        socket.destroy()
        reject(
          new TesseraError('TSR_DISCOVERY_SOURCE', `tls ${endpoint}: ${why}`, {
            ...(cause === undefined ? {} : { cause }),
            details: { endpoint },
          }),
        )
      }
      socket.setTimeout(target.timeoutMs ?? 10_000, () => fail('timed out'))
      socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message, err))
      socket.once('secureConnect', () => {
        const certificates: Buffer[] = []
        const seen = new Set<string>()
        let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true)
        // The issuer links end in a self-reference at the root.
        while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
          seen.add(cert.fingerprint256)
          certificates.push(Buffer.from(cert.raw))
          cert = cert.issuerCertificate
        }
        const authorizationError = socket.authorizationError
        const protocol = socket.getProtocol() ?? undefined
        socket.end()
        if (certificates.length === 0) return fail('served no certificate')
        resolve({
          certificates,
          authorized: socket.authorized,
          ...(authorizationError ? { authorizationError: String(authorizationError) } : {}),
          ...(protocol ? { protocol } : {}),
        })
      })
    })
  },
}
