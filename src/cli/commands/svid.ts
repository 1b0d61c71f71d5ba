import type { Command } from 'commander'
import { TesseraError } from '../../errors.js'
import { runSvidHelper } from '../../agent/svid-helper.js'
import { parseEndpointSocket } from '../../workload-api/client.js'
import type { CommandContext } from '../context.js'

/**
 * `tessera svid fetch`: our Workload API client helper (like spiffe-helper). Writes svid.pem,
 * svid_key.pem (0600) and bundle.pem, keeps them fresh from the open stream, and can run a command
 * and signal it on every rotation.
 */
export function registerSvidCommands(program: Command, ctx: CommandContext): void {
  const svid = program.command('svid').description('fetch SVIDs from the local Workload API')
  svid
    .command('fetch')
    .description('write the X509-SVID, its key and the bundle as PEM files and keep them fresh')
    .option(
      '--socket <path>',
      'Workload API socket: unix:///path or a path (default $SPIFFE_ENDPOINT_SOCKET)',
    )
    .requiredOption('--out <dir>', 'directory for svid.pem, svid_key.pem and bundle.pem')
    .option('--cmd <command>', 'run this command (through /bin/sh -c) once the files exist')
    .option('--signal <signal>', 'signal sent to the command after each rotation', 'SIGHUP')
    .option('--once', 'write the files once and exit')
    .addHelpText(
      'after',
      `
The socket comes from --socket or SPIFFE_ENDPOINT_SOCKET. Without --once the command runs until
interrupted (or until --cmd exits, with its exit code), rewriting the files on every rotation.`,
    )
    .action(
      async (
        opts: { socket?: string; out: string; cmd?: string; signal: string; once?: boolean },
        cmd: Command,
      ) => {
        const json = ctx.globals(cmd).json
        const socket = opts.socket ?? (ctx.io.env.SPIFFE_ENDPOINT_SOCKET || undefined)
        if (socket === undefined || socket === '') {
          throw new TesseraError(
            'TSR_VALIDATION',
            'no Workload API socket: pass --socket or set SPIFFE_ENDPOINT_SOCKET',
          )
        }
        const signal = opts.signal.toUpperCase().replace(/^(?!SIG)/, 'SIG')
        if (!/^SIG[A-Z0-9]+$/.test(signal)) {
          throw new TesseraError('TSR_VALIDATION', `--signal: not a signal name: ${opts.signal}`)
        }
        const abort = new AbortController()
        const stop = (): void => abort.abort()
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
        try {
          const code = await runSvidHelper({
            socketPath: parseEndpointSocket(socket),
            outDir: opts.out,
            ...(opts.cmd === undefined ? {} : { cmd: opts.cmd }),
            signal: signal as NodeJS.Signals,
            once: opts.once === true,
            abort: abort.signal,
            onEvent: (e) => {
              if (json) {
                void ctx.out(JSON.stringify(e) + '\n')
              } else if (e.event === 'written') {
                ctx.note(
                  `wrote ${String(e.spiffeId)} (serial ${String(e.serial)}, expires ${String(e.notAfter)})`,
                )
              } else if (e.event === 'stream_error') {
                ctx.note(`Workload API: ${String(e.code)} ${String(e.details)}; retrying`)
              }
            },
          })
          if (code !== 0) ctx.setExitCode(code === 2 ? 2 : code === 1 ? 1 : 3)
        } finally {
          process.off('SIGINT', stop)
          process.off('SIGTERM', stop)
        }
      },
    )
}
