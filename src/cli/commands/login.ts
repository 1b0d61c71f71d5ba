import type { Command } from 'commander'
import { TesseraError } from '../../errors.js'
import { saveConfig } from '../config.js'
import type { CommandContext } from '../context.js'
import { createRemoteClient, isInsecureRemote } from '../remote.js'

/**
 * `tessera login --server URL --token T`: checks the token against the server (a read call), then
 * saves both to the config file with mode 0600, so later commands need neither option.
 */
export function registerLoginCommand(program: Command, ctx: CommandContext): void {
  program
    .command('login')
    .description('check a server URL and API token, and save them to the config file (mode 0600)')
    .addHelpText(
      'after',
      `
Needs the global --server URL and --token T (or TESSERA_TOKEN). The config file is
$TESSERA_CONFIG, else $XDG_CONFIG_HOME/tessera/config.json, else ~/.config/tessera/config.json.`,
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const server = g.server ?? (ctx.io.env.TESSERA_SERVER || undefined)
      const token = g.token ?? (ctx.io.env.TESSERA_TOKEN || undefined)
      if (!server || !token) {
        throw new TesseraError(
          'TSR_VALIDATION',
          'login needs --server URL and --token T (or TESSERA_TOKEN)',
        )
      }
      const client = createRemoteClient({
        server,
        token,
        ...(ctx.io.fetch ? { fetch: ctx.io.fetch } : {}),
      })
      if (isInsecureRemote(client.baseUrl)) {
        ctx.note(
          `warning: ${client.baseUrl} is plain http; the token will cross the network in the clear`,
        )
      }
      // Any read route proves the token; stats is small.
      await client.inventory.stats()
      const path = saveConfig(ctx.io.env, { server: client.baseUrl, token })
      await ctx.out(
        g.json
          ? JSON.stringify({ server: client.baseUrl, config: path }) + '\n'
          : `logged in to ${client.baseUrl}; saved to ${path}\n`,
      )
    })
}
