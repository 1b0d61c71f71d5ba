import type { Observation } from '../../inventory/observation.js'
import { createCollector } from '../collector.js'
import type { Connector, ConnectorFactory, DiscoverContext, TlsTarget } from '../connector.js'
import { OptionReader } from '../options.js'
import { TesseraError } from '../../errors.js'
import { collectCertificate, describeCertificate } from './x509.js'

/** `host:port`, `[v6]:port`, or a bare host (port 443). */
export function parseEndpoint(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s/]+))(?::(\d{1,5}))?$/.exec(text.trim())
  if (!m) return undefined
  const port = m[3] === undefined ? 443 : Number(m[3])
  if (port < 1 || port > 65535) return undefined
  return { host: (m[1] ?? m[2])!, port }
}

/**
 * Live TLS endpoints: the chain each one serves (leaf first), whether it verified against the
 * default CAs, with SNI. An unreachable endpoint is reported; the others are still read.
 */
export const createTlsConnector: ConnectorFactory = (config) => {
  const o = new OptionReader(config)
  const raw = o.strings('endpoints')
  if (raw.length === 0 && !o.problems.length)
    o.problems.push('endpoints: give at least one host:port')
  const targets: TlsTarget[] = []
  const sni = o.string('sni')
  const timeoutMs = o.int('timeoutMs', 100, 120_000)
  const caFile = o.path('caFile')
  for (const e of raw) {
    const parsed = parseEndpoint(e)
    if (!parsed) o.problems.push(`endpoints: ${JSON.stringify(e)} is not host:port`)
    else
      targets.push({
        ...parsed,
        ...(sni ? { servername: sni } : {}),
        ...(timeoutMs ? { timeoutMs } : {}),
      })
  }
  const problems = o.finish()
  if (problems.length > 0) return { ok: false, problems }
  const connector: Connector = {
    kind: 'tls',
    name: config.name,
    scope: config.scope ?? 'full',
    discover: (ctx) => discoverTls(ctx, config.name, targets, caFile),
  }
  return { ok: true, connector }
}

async function* discoverTls(
  ctx: DiscoverContext,
  source: string,
  targets: TlsTarget[],
  caFile: string | undefined,
): AsyncGenerator<Observation> {
  if (!ctx.tls) throw new TesseraError('TSR_CONFIG', 'tls connector: no TLS client in this context')
  const ca = caFile === undefined ? undefined : await ctx.files.readFile(caFile)
  const c = createCollector(source)
  const now = ctx.clock.now()
  for (const t of targets) {
    const endpoint = `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`
    ctx.progress?.(`connecting to ${endpoint}`)
    try {
      const chain = await ctx.tls.fetchChain(ca ? { ...t, ca } : t)
      chain.certificates.forEach((der, position) => {
        try {
          collectCertificate(
            c,
            describeCertificate(der),
            {
              kind: 'tls',
              endpoint,
              host: t.host,
              position,
              verified: chain.authorized,
              ...(chain.authorizationError ? { verifyError: chain.authorizationError } : {}),
              ...(t.servername ? { servername: t.servername } : {}),
            },
            now,
          )
        } catch (err) {
          ctx.report(
            new TesseraError(
              'TSR_DISCOVERY_SOURCE',
              `tls ${endpoint}: certificate ${position} of the chain is not valid X.509`,
              { cause: err },
            ),
          )
        }
      })
    } catch (err) {
      ctx.report(
        err instanceof TesseraError
          ? err
          : new TesseraError('TSR_DISCOVERY_SOURCE', `tls ${endpoint}: ${String(err)}`, {
              cause: err,
            }),
      )
    }
  }
  yield* c.drain()
}
