import { Command, CommanderError, Option } from 'commander'
import { systemClock } from '../runtime/clock.js'
import { registerAccessCommands } from './commands/access.js'
import { registerAuthzCommands } from './commands/authz.js'
import { registerAgentCommand } from './commands/agent.js'
import { registerApiTokenCommands } from './commands/api-token.js'
import { registerCaCommands } from './commands/ca.js'

import { registerFederationCommands } from './commands/federation.js'
import { registerEntryCommands } from './commands/entry.js'
import { registerDiscoverCommands } from './commands/discover.js'
import { registerInventoryCommands } from './commands/inventory.js'
import { registerLoginCommand } from './commands/login.js'
import { registerRevokeCommand } from './commands/revoke.js'
import { registerSecretCommands } from './commands/secret.js'
import { registerScanCommand } from './commands/scan.js'
import { registerServerCommand } from './commands/server.js'
import { registerTokenCommands } from './commands/token.js'
import { registerSvidCommands } from './commands/svid.js'
import { registerUsageCommands } from './commands/usage.js'
import { registerReconcileCommand } from './commands/reconcile.js'
import { registerDetectCommands } from './commands/detect.js'
import { registerFindingsCommands } from './commands/findings.js'
import { registerOffboardCommand } from './commands/offboard.js'
import { registerAuditCommands } from './commands/audit.js'
import { registerOwnerCommands } from './commands/owner.js'
import { registerPolicyCommands } from './commands/policy.js'
import { registerReportCommands } from './commands/report.js'
import { registerDynamicCommands } from './commands/dynamic.js'
import { createCommandContext, type CliIo } from './context.js'
import { exitCodeFor, exitCodes, exitCodesHelp, formatError, type ExitCode } from './exit-codes.js'

const version = '0.1.0'

/** Builds the `tessera` program: global options here, one file per noun under commands/. */
export function buildProgram(io: CliIo, exit: { code: ExitCode }): Command {
  const ctx = createCommandContext(io, exit)
  const program = new Command('tessera')
    .description('Tessera: find, secure and govern every non-human identity')
    .version(version, '-V, --version')
    .addOption(new Option('--json', 'machine-readable output (JSON) on stdout'))
    .addOption(
      new Option(
        '--server <url>',
        'use this Tessera server (or TESSERA_SERVER) instead of a local store',
      ),
    )
    .addOption(
      new Option(
        '--token <token>',
        'API token for --server (prefer TESSERA_TOKEN or tessera login)',
      ),
    )
    .addOption(new Option('--data-dir <dir>', 'embedded store directory (default ./.tessera)'))
    .addOption(new Option('--database <url>', 'PostgreSQL URL (or TESSERA_DATABASE_URL)'))
    .addHelpText(
      'after',
      `
Backend: --server URL (or TESSERA_SERVER, or the server saved by "tessera login") uses a server;
otherwise commands open the store directly (--data-dir, default ./.tessera, or --database URL).

${exitCodesHelp}`,
    )
  registerServerCommand(program, ctx)
  registerInventoryCommands(program, ctx)
  registerApiTokenCommands(program, ctx)
  registerLoginCommand(program, ctx)
  registerRevokeCommand(program, ctx)
  registerFederationCommands(program, ctx)
  registerEntryCommands(program, ctx)
  registerTokenCommands(program, ctx)
  registerAgentCommand(program, ctx)
  registerSvidCommands(program, ctx)
  registerDiscoverCommands(program, ctx)
  registerScanCommand(program, ctx)
  registerCaCommands(program, ctx)
  registerAccessCommands(program, ctx)
  registerUsageCommands(program, ctx)
  registerReconcileCommand(program, ctx)
  registerDetectCommands(program, ctx)
  registerFindingsCommands(program, ctx)
  registerOffboardCommand(program, ctx)
  registerAuditCommands(program, ctx)
  registerAuthzCommands(program, ctx)
  registerOwnerCommands(program, ctx)
  registerPolicyCommands(program, ctx)
  registerReportCommands(program, ctx)
  registerSecretCommands(program, ctx)
  registerDynamicCommands(program, ctx)

  applyToAll(program, (cmd) => {
    cmd.exitOverride()
    cmd.configureHelp({ showGlobalOptions: true, sortSubcommands: true })
    cmd.configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Errors are printed once, by runCli, in the CLI's error format.
      outputError: () => {},
    })
  })
  return program
}

function applyToAll(cmd: Command, fn: (cmd: Command) => void): void {
  fn(cmd)
  for (const sub of cmd.commands) applyToAll(sub, fn)
}

/** Runs the CLI on `argv` (without node and script) and resolves to the exit code. */
export async function runCli(args: readonly string[], io: Partial<CliIo> = {}): Promise<ExitCode> {
  const fullIo: CliIo = {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    clock: io.clock ?? systemClock,
    ...(io.fetch ? { fetch: io.fetch } : {}),
    ...(io.openBackend ? { openBackend: io.openBackend } : {}),
  }
  const exit = { code: exitCodes.ok as ExitCode }
  const program = buildProgram(fullIo, exit)
  try {
    await program.parseAsync([...args], { from: 'user' })
    return exit.code
  } catch (err) {
    const code = exitCodeFor(err)
    // Help already went out (on stderr when a command was missing); nothing to add.
    if (err instanceof CommanderError && (code === exitCodes.ok || err.code === 'commander.help')) {
      return code
    }
    const json = args.includes('--json')
    fullIo.stderr.write(formatError(err, { json, debug: fullIo.env.TESSERA_DEBUG === '1' }))
    if (err instanceof CommanderError && !json) {
      fullIo.stderr.write('(run with --help for usage)\n')
    }
    return code
  }
}
