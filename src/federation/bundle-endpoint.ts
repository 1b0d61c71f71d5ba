import { generateKeyPairSync, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { SecureContextOptions } from 'node:tls'
import type { CertificateAuthority } from '../ca/ca-types.js'
import { TesseraError } from '../errors.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import { serializeBundle } from '../spiffe/bundle.js'

/**
 * The SPIFFE bundle endpoint other trust domains poll (SPIFFE Federation §5). It serves this trust
 * domain's bundle document at `/` (and `/bundle`) over HTTPS, authenticated by one of the two
 * profiles:
 * - `https_spiffe`: the server presents an X509-SVID of this trust domain
 *   (`spiffe://<td>/tessera/bundle-endpoint` by default), minted by our own CA and renewed at half
 *   its life, so peers check it against the bundle they already hold;
 * - `https_web`: the server presents an operator-given Web PKI certificate (files re-read on
 *   renewal, so a certbot-style rotation needs no restart).
 */

export type BundleEndpointConfig =
  | { profile: 'https_spiffe'; spiffeId?: string }
  | { profile: 'https_web'; certFile: string; keyFile: string }

export interface BundleEndpointOptions {
  host: string
  port: number
  config: BundleEndpointConfig
  ca: Pick<CertificateAuthority, 'trustDomain' | 'signX509Svids' | 'bundle'>
  clock?: Clock
  /** How often the served certificate is checked for renewal (default 60 s). */
  checkEveryMs?: number
  onError?: (err: unknown) => void
}

export interface BundleEndpoint {
  readonly url: string
  /** The SPIFFE ID presented under https_spiffe. */
  readonly spiffeId: string | undefined
  close(): Promise<void>
}

export async function startBundleEndpoint(options: BundleEndpointOptions): Promise<BundleEndpoint> {
  const clock = options.clock ?? systemClock
  const { config, ca } = options
  const spiffeId =
    config.profile === 'https_spiffe'
      ? (config.spiffeId ?? `spiffe://${ca.trustDomain}/tessera/bundle-endpoint`)
      : undefined
  if (spiffeId !== undefined && !spiffeId.startsWith(`spiffe://${ca.trustDomain}/`)) {
    throw new TesseraError(
      'TSR_CONFIG',
      `the bundle endpoint's SPIFFE ID must belong to ${ca.trustDomain}`,
    )
  }

  let renewAt = 0
  async function credentials(): Promise<SecureContextOptions> {
    if (config.profile === 'https_web') {
      try {
        const cert = readFileSync(config.certFile, 'utf8')
        const key = readFileSync(config.keyFile, 'utf8')
        const leaf = new X509Certificate(cert)
        renewAt = Math.min(Date.parse(leaf.validTo), clock.now().getTime() + 3_600_000)
        return { cert, key }
      } catch (err) {
        throw new TesseraError(
          'TSR_CONFIG',
          `bundle endpoint certificate: ${(err as Error).message}`,
          { cause: err },
        )
      }
    }
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const [svid] = await ca.signX509Svids([{ spiffeId: spiffeId!, publicKey, ttlSeconds: 3600 }])
    if (!svid) throw new TesseraError('TSR_INTERNAL', 'the CA returned no SVID')
    const life = svid.notAfter.getTime() - svid.notBefore.getTime()
    renewAt = svid.notBefore.getTime() + life / 2
    return {
      cert: svid.certChain.map((der) => new X509Certificate(der).toString()).join(''),
      key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    }
  }

  const server: Server = createServer(
    { ...(await credentials()), minVersion: 'TLSv1.2' },
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (req.method !== 'GET' || (path !== '/' && path !== '/bundle')) {
        res.writeHead(req.method !== 'GET' ? 405 : 404, { 'content-type': 'text/plain' })
        res.end(req.method !== 'GET' ? 'method not allowed\n' : 'not found\n')
        return
      }
      ca.bundle().then(
        (bundle) => {
          res.writeHead(200, {
            'content-type': 'application/json',
            'cache-control': `max-age=${Math.max(0, Math.floor(bundle.refreshHintSeconds / 2))}`,
          })
          res.end(serializeBundle(bundle))
        },
        (err) => {
          options.onError?.(err)
          res.writeHead(503, { 'content-type': 'text/plain' })
          res.end('bundle unavailable\n')
        },
      )
    },
  )

  const timer = setInterval(() => {
    if (clock.now().getTime() < renewAt) return
    credentials().then(
      (creds) => server.setSecureContext(creds),
      (err) => options.onError?.(err),
    )
  }, options.checkEveryMs ?? 60_000)
  timer.unref()

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new TesseraError(
          'TSR_CONFIG',
          `bundle endpoint cannot listen on ${options.host}:${options.port} (${err.code ?? err.message})`,
          { cause: err },
        ),
      ),
    )
    server.listen(options.port, options.host, () => resolve())
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `https://${host}:${address.port}/`,
    spiffeId,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer)
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
