import type { Command } from 'commander'
import type { CommandContext } from '../context.js'
import { parseDurationSeconds } from '../time.js'
import { requireControl } from './entry.js'

/** `tessera token create [--ttl DUR]`: a single-use join token for one node agent. */
export function registerTokenCommands(program: Command, ctx: CommandContext): void {
  const token = program.command('token').description('join tokens for node agents')
  token
    .command('create')
    .description('create a single-use join token (printed this once; the server keeps its hash)')
    .option('--ttl <duration>', 'how long it can be used, e.g. 10m, 1h (default 10m)')
    .action(async (opts: { ttl?: string }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const ttlSeconds =
        opts.ttl === undefined ? undefined : parseDurationSeconds(opts.ttl, '--ttl')
      await ctx.withBackend(cmd, async (backend) => {
        const created = await requireControl(backend).createJoinToken(
          ttlSeconds === undefined ? {} : { ttlSeconds },
        )
        await ctx.out(
          g.json
            ? JSON.stringify(created) + '\n'
            : `${created.token}\n(single use, expires ${created.expiresAt}; start the agent with --join-token)\n`,
        )
      })
    })
}
