import { resolve } from 'node:path'
import { Option, type Command } from 'commander'
import type { Connector, SourceRunStats, TlsProbe } from '../../discovery/index.js'
import { TesseraError } from '../../errors.js'
import type { CommandContext } from '../context.js'
import { exitCodes } from '../exit-codes.js'
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
            context: { clock: ctx.io.clock, files: nodeFileReader, ...extra },
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
