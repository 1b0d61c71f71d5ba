import type { Command } from 'commander'
import type { IssuanceView } from '../../ca/issuance-history.js'
import type { CommandContext } from '../context.js'
import { intOption } from '../options.js'
import { renderTable } from '../table.js'
import { parseTimeOption } from '../time.js'
import { caAdminOf } from './ca.js'

/** `tessera access held SPIFFE_ID --at TIME`: who held a SPIFFE ID then, through which node. */
export function registerAccessCommands(program: Command, ctx: CommandContext): void {
  const access = program
    .command('access')
    .description('who held which workload identity when (from the issuance records)')

  access
    .command('held')
    .description(
      'the SVIDs of a SPIFFE ID valid at an instant: serial or jti, validity, and the agent (node)',
    )
    .argument('<spiffe-id>', 'e.g. spiffe://example.org/ns/prod/sa/api')
    .option('--at <time>', 'an instant (ISO 8601), a duration ago (2h), or now', 'now')
    .option('--agent <id>', 'only SVIDs issued through this agent')
    .option('--limit <n>', 'at most this many (newest first)', intOption(1, 1000), 100)
    .action(
      async (
        spiffeId: string,
        opts: { at: string; agent?: string; limit: number },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        const at = parseTimeOption(opts.at, {
          option: '--at',
          now: ctx.io.clock.now(),
          direction: 'past',
        })
        await ctx.withBackend(cmd, async (backend) => {
          const page = await caAdminOf(backend).issuance({
            spiffeId,
            at,
            limit: opts.limit,
            ...(opts.agent === undefined ? {} : { agentId: opts.agent }),
          })
          if (g.json) return ctx.out(JSON.stringify({ at: at.toISOString(), ...page }) + '\n')
          if (page.items.length === 0) {
            ctx.setExitCode(1)
            return ctx.out(`no SVID of ${spiffeId} was valid at ${at.toISOString()}\n`)
          }
          return ctx.out(renderTable(columns, page.items))
        })
      },
    )
}

const columns = [
  { header: 'TYPE', value: (r: IssuanceView) => r.svidType },
  { header: 'SERIAL / JTI', value: (r: IssuanceView) => r.serial ?? r.jti ?? '' },
  { header: 'NOT BEFORE', value: (r: IssuanceView) => r.notBefore },
  { header: 'NOT AFTER', value: (r: IssuanceView) => r.notAfter },
  {
    header: 'AGENT',
    value: (r: IssuanceView) => r.agentSpiffeId ?? r.agentId ?? '(none)',
    maxWidth: 60,
  },
]
