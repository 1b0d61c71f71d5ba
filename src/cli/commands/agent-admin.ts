import type { Command } from 'commander'
import { formatSelector } from '../../entries/entry-validate.js'
import type { CommandContext } from '../context.js'
import { renderTable } from '../table.js'
import { requireControl } from './entry.js'

/**
 * Adds `list` and `ban` to the given `agent` command (the `agent` command itself runs the node
 * agent; the program wires both).
 */
export function addAgentAdminCommands(agent: Command, ctx: CommandContext): void {
  agent
    .command('list')
    .description('attested agents with their SPIFFE IDs')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const items = await requireControl(backend).listAgents()
        if (g.json) {
          await ctx.out(JSON.stringify({ items }) + '\n')
          return
        }
        if (items.length === 0) {
          await ctx.out('no attested agents\n')
          return
        }
        await ctx.out(
          renderTable(
            [
              { header: 'ID', value: (a) => a.id },
              { header: 'SPIFFE ID', value: (a) => a.spiffeId, maxWidth: 70, truncate: 'middle' },
              { header: 'TYPE', value: (a) => a.attestationType },
              {
                header: 'SELECTORS',
                value: (a) => a.selectors.map(formatSelector).join(' '),
                maxWidth: 50,
              },
              { header: 'SVID EXPIRES', value: (a) => a.expiresAt ?? '-' },
              { header: 'STATUS', value: (a) => (a.banned ? 'banned' : 'active') },
            ],
            items,
          ),
        )
      })
    })

  agent
    .command('ban')
    .description('ban an agent: refused by the server, cannot renew or re-attest')
    .argument('<id>', 'agent id or SPIFFE ID')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const banned = await requireControl(backend).banAgent(id)
        await ctx.out(
          g.json
            ? JSON.stringify(banned) + '\n'
            : `banned agent ${banned.id} (${banned.spiffeId})\n`,
        )
      })
    })
}
