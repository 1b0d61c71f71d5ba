import { resolve } from 'node:path'
import { Option, type Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type { CommandContext } from '../context.js'
import { intOption, oneOf } from '../options.js'

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * `tessera server`: the control plane in the foreground. stdout carries only the banner (URL and,
 * on the first start of a store, the admin token) so a script can read it; pino's JSON logs go to
 * stderr. SIGINT or SIGTERM drains requests and closes the store; a second signal exits at once.
 */
export function registerServerCommand(program: Command, ctx: CommandContext): void {
  program
    .command('server')
    .description('run the control plane (REST API) on the embedded store or PostgreSQL')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0 picks a free one)', intOption(0, 65_535), 8750)
    .addOption(
      new Option('--log-level <level>', 'log level').argParser(oneOf(logLevels)).default('info'),
    )
    .option(
      '--sources <file>',
      'discovery sources file: sources with an interval run on a schedule (or TESSERA_SOURCES)',
    )
    .addHelpText(
      'after',
      `
The first start of a store prints an admin API token once; keep it (e.g. tessera login).
stdout: the banner (with --json one line {"url","adminToken"}); stderr: JSON logs.`,
    )
    .action(
      async (
        opts: { host: string; port: number; logLevel: string; sources?: string },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        if (g.server !== undefined) {
          throw new TesseraError('TSR_VALIDATION', '--server does not apply to "tessera server"')
        }
        if (g.dataDir !== undefined && g.database !== undefined) {
          throw new TesseraError('TSR_VALIDATION', 'give either --data-dir or --database, not both')
        }
        const [{ startServer }, { pino }] = await Promise.all([
          import('../../server/compose.js'),
          import('pino'),
        ])
        const databaseUrl =
          g.database ??
          (g.dataDir === undefined ? ctx.io.env.TESSERA_DATABASE_URL || undefined : undefined)
        const sourcesFile = opts.sources ?? (ctx.io.env.TESSERA_SOURCES || undefined)
        const server = await startServer({
          ...(databaseUrl ? { databaseUrl } : { dataDir: resolve(g.dataDir ?? '.tessera') }),
          host: opts.host,
          port: opts.port,
          logLevel: opts.logLevel,
          log: pino.destination({ dest: 2, sync: false }),
          ...(sourcesFile ? { sourcesFile: resolve(sourcesFile) } : {}),
        })
        if (g.json) {
          await ctx.out(
            JSON.stringify({ url: server.url, adminToken: server.adminToken ?? null }) + '\n',
          )
        } else {
          await ctx.out(banner(server.url, server.store.location, server.adminToken))
        }
        await waitForSignal()
        await server.close()
      },
    )
}

function banner(url: string, location: string, adminToken: string | undefined): string {
  let text = `\nTessera server listening on ${url}\n  store: ${location}\n  API docs: ${url}/docs\n`
  if (adminToken) {
    const rule = '='.repeat(72)
    text +=
      `\n${rule}\n` +
      `  First start: an admin API token was created. It is shown only now.\n\n` +
      `    ${adminToken}\n\n` +
      `  Save it, e.g.:  tessera login --server ${url} --token <token>\n` +
      `${rule}\n`
  }
  return text + '\n'
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits at once (130). */
function waitForSignal(): Promise<void> {
  return new Promise((resolveWait) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      process.once('SIGINT', () => process.exit(130))
      process.once('SIGTERM', () => process.exit(130))
      resolveWait()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}
