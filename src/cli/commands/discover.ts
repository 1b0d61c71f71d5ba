import { resolve } from 'node:path'
import { Option, type Command } from 'commander'
import type { Connector, SourceRunStats, TlsProbe } from '../../discovery/index.js'
import { TesseraError } from '../../errors.js'
import type { CommandContext } from '../context.js'
import { exitCodes } from '../exit-codes.js'
import { intOption } from '../options.js'
import { createDelayedProgress, formatCount } from '../progress.js'
import { renderTable, type Column } from '../table.js'

const defaultSourcesFile = 'tessera-sources.yaml'

/** `tessera discover run|tls`: run discovery connectors once and ingest what they see. */
export function registerDiscoverCommands(program: Command, ctx: CommandContext): void {
  const discover = program
    .command('discover')
    .description('discovery: run the configured connectors, or read live TLS endpoints')

  discover
    .command('run')
    .description('run configured sources once (all, or those named) and ingest what they see')
    .argument('[source...]', 'source names from the sources file (default: all)')
    .addOption(
      new Option(
        '--config <file>',
        `sources file, YAML or JSON (default: TESSERA_SOURCES or ./${defaultSourcesFile})`,
      ),
    )
    .addHelpText(
      'after',
      `
Each source runs under a discovery run of its own name. A full-scope source closes the facts it
no longer sees, but only when it read everything: a malformed or truncated input is reported
(file and position) on stderr, its valid part is still ingested, and the run is marked failed
so it closes nothing. Exit code 0 when every source succeeded, 1 when some reported errors.
See docs/connectors.md for the sources file and each connector's options.`,
    )
    .action(async (names: string[], opts: { config?: string }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const { loadSourcesFile, selectSources } = await import('../../discovery/sources.js')
      const file = resolve(opts.config ?? ctx.io.env.TESSERA_SOURCES ?? defaultSourcesFile)
      const sources = selectSources(await loadSourcesFile(file, ctx.io.env), names)
      if (sources.length === 0)
        throw new TesseraError('TSR_CONFIG', `${file} configures no sources`)
      const results = await runAndReport(
        ctx,
        cmd,
        sources.map((s) => s.connector),
        g.json,
      )
      await ctx.out(g.json ? JSON.stringify({ sources: results }) + '\n' : renderRunTable(results))
    })

  registerTls(discover, ctx)
}

interface SeenCertificate {
  endpoint: string
  position: number
  subject: string
  issuer: string
  notAfter: string
  key: string
  verified: boolean
  verifyError?: string
  spiffeIds: string[]
  dns: string[]
}

function registerTls(discover: Command, ctx: CommandContext): void {
  discover
    .command('tls')
    .description('read the certificate chains live TLS endpoints serve, and ingest them')
    .argument('<endpoint...>', 'host:port (port 443 when omitted), [v6]:port')
    .option('--sni <name>', 'server name to send (default: the host, unless it is an IP address)')
    .option('--ca <file>', 'verify against these CA certificates (PEM) instead of the system roots')
    .option('--timeout <ms>', 'connect and handshake timeout', intOption(100, 120_000), 10_000)
    .option('--source <name>', 'source of the facts', 'tls')
    .addHelpText(
      'after',
      `
Verification is recorded, not enforced: an expired or self-signed chain is still read. The run is
a delta run (it never closes facts of other endpoints). Exit code 1 when an endpoint could not be
read.`,
    )
    .action(
      async (
        endpoints: string[],
        opts: { sni?: string; ca?: string; timeout: number; source: string },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        const { createTlsConnector } = await import('../../discovery/certificates/tls-connector.js')
        const made = createTlsConnector({
          name: opts.source,
          scope: 'delta',
          options: {
            endpoints,
            timeoutMs: opts.timeout,
            ...(opts.sni ? { sni: opts.sni } : {}),
            ...(opts.ca ? { caFile: resolve(opts.ca) } : {}),
          },
          baseDir: process.cwd(),
          env: ctx.io.env,
        })
        if (!made.ok) throw new TesseraError('TSR_VALIDATION', made.problems.join('; '))
        const inner = made.connector
        const seen: SeenCertificate[] = []
        const tapped: Connector = {
          ...inner,
          async *discover(dctx) {
            const creds = new Map<string, Record<string, unknown>>()
            for await (const o of inner.discover(dctx)) {
              if (o.type === 'credential')
                creds.set(o.ref, { ...o.attributes, notAfter: o.expiresAt, issuer: o.issuer })
              if (o.type === 'location' && o.path?.startsWith('tls://')) {
                const a = creds.get(o.credential) ?? {}
                seen.push({
                  endpoint: o.path.slice('tls://'.length),
                  position: Number(o.attributes?.chainPosition ?? 0),
                  subject: String(a.subject ?? ''),
                  issuer: String(a.issuer ?? ''),
                  notAfter: String(a.notAfter ?? ''),
                  key: `${String(a.keyType)}${a.keySize ? ` ${String(a.keySize)}` : ''}`,
                  verified: o.attributes?.verified === true,
                  ...(o.attributes?.verifyError
                    ? { verifyError: String(o.attributes.verifyError) }
                    : {}),
                  spiffeIds: (a.spiffeIds as string[] | undefined) ?? [],
                  dns: (a.dns as string[] | undefined) ?? [],
                })
              }
              yield o
            }
          },
        }
        const [stats] = await runAndReport(ctx, cmd, [tapped], g.json)
        seen.sort((a, b) =>
          a.endpoint === b.endpoint ? a.position - b.position : a.endpoint < b.endpoint ? -1 : 1,
        )
        if (g.json) {
          await ctx.out(JSON.stringify({ certificates: seen, run: stats }) + '\n')
          return
        }
        await ctx.out(
          renderTable(
            [
              { header: 'ENDPOINT', value: (r: SeenCertificate) => r.endpoint },
              { header: '#', value: (r) => r.position, align: 'right' },
              { header: 'SUBJECT', value: (r) => r.subject, maxWidth: 48, truncate: 'middle' },
              {
                header: 'SANS',
                value: (r) => [...r.spiffeIds, ...r.dns].join(' '),
                maxWidth: 48,
                truncate: 'middle',
              },
              { header: 'ISSUER', value: (r) => r.issuer, maxWidth: 40, truncate: 'middle' },
              { header: 'NOT AFTER', value: (r) => r.notAfter.slice(0, 10) },
              { header: 'KEY', value: (r) => r.key },
              {
                header: 'VERIFIED',
                value: (r) => (r.verified ? 'yes' : `no (${r.verifyError ?? 'unknown'})`),
              },
            ],
            seen,
          ) + (stats ? renderRunTable([stats]) : ''),
        )
      },
    )
}

/** Runs connectors against the command's backend with a progress line; notes every problem. */
export async function runAndReport(
  ctx: CommandContext,
  cmd: Command,
  connectors: readonly Connector[],
  json: boolean,
  extra: { tls?: TlsProbe } = {},
): Promise<SourceRunStats[]> {
  const { runConnector } = await import('../../discovery/runner.js')
  const { nodeFileReader } = await import('../../discovery/files.js')
  const { nodeTlsProbe } = await import('../../discovery/certificates/tls-probe.js')
  return ctx.withBackend(cmd, async (backend) => {
    const progress = createDelayedProgress({
      enabled: ctx.io.stderr.isTTY === true && !json,
      total: connectors.length,
      stream: ctx.io.stderr as NodeJS.WriteStream,
      format: '{bar} {value}/{total} sources | {source} | {seen} seen | {errors} errors',
    })
    const results: SourceRunStats[] = []
    try {
      for (const [i, connector] of connectors.entries()) {
        progress.update(i, { source: connector.name, seen: 0, errors: 0 })
        const stats = await runConnector(
          {
            inventory: backend.inventory,
            context: { clock: ctx.io.clock, files: nodeFileReader, tls: nodeTlsProbe, ...extra },
          },
          connector,
          {
            onProgress: (p) =>
              progress.update(i, { source: p.source, seen: formatCount(p.seen), errors: p.errors }),
          },
        )
        results.push(stats)
      }
    } finally {
      progress.stop()
    }
    for (const r of results) {
      if (json) continue
      for (const p of r.problems) ctx.note(`${r.source}: ${p}`)
      if (r.errors > r.problems.length) {
        ctx.note(`${r.source}: … and ${r.errors - r.problems.length} more problems`)
      }
    }
    if (results.some((r) => r.errors > 0)) ctx.setExitCode(exitCodes.findings)
    return results
  })
}

const runColumns: Column<SourceRunStats>[] = [
  { header: 'SOURCE', value: (r) => r.source, maxWidth: 40, truncate: 'middle' },
  { header: 'KIND', value: (r) => r.kind },
  { header: 'SCOPE', value: (r) => r.scope },
  { header: 'STATUS', value: (r) => r.status },
  { header: 'SEEN', value: (r) => formatCount(r.seen), align: 'right' },
  { header: 'NEW', value: (r) => formatCount(r.new), align: 'right' },
  { header: 'CHANGED', value: (r) => formatCount(r.changed), align: 'right' },
  { header: 'CLOSED', value: (r) => formatCount(r.closed), align: 'right' },
  { header: 'ERRORS', value: (r) => formatCount(r.errors), align: 'right' },
  { header: 'TIME', value: (r) => `${(r.durationMs / 1000).toFixed(1)} s`, align: 'right' },
]

export function renderRunTable(results: readonly SourceRunStats[]): string {
  return renderTable(runColumns, results)
}
