import { Option, type Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type { RevocationTarget, RevocationView } from '../../lifecycle/revocations.js'
import type { CommandContext } from '../context.js'
import { intOption } from '../options.js'
import { renderTable } from '../table.js'
import { parseTimeOption } from '../time.js'
import { revokeLease } from './dynamic.js'

interface RevokeOptions {
  spiffeId?: string
  serial?: string
  jti?: string
  agent?: string
  reason?: string
  expiresAt?: string
  list?: boolean
  after?: number
  includeExpired?: boolean
  lease?: string
}

/**
 * `tessera revoke (--spiffe-id ID | --serial S | --jti J | --agent ID)` puts one target on the
 * deny-list; `tessera revoke --list` shows the list.
 */
export function registerRevokeCommand(program: Command, ctx: CommandContext): void {
  program
    .command('revoke')
    .description(
      'put a SPIFFE ID, certificate serial, JWT id or agent on the deny-list (an agent is also banned)',
    )
    .addOption(new Option('--spiffe-id <id>', 'every SVID of this SPIFFE ID'))
    .addOption(
      new Option('--serial <hex>', 'one X.509 certificate, by serial (hex, colons allowed)'),
    )
    .addOption(new Option('--jti <jti>', 'one JWT, by its jti'))
    .addOption(new Option('--agent <id>', 'a node agent (its id from "agent list")'))
    .addOption(new Option('--lease <id>', 'a dynamic credential lease (drops its user now)'))
    .option('--reason <text>', 'why (kept with the entry, shown to operators)')
    .option(
      '--expires-at <time>',
      'the entry stops applying then: an instant (the SVID expiry) or a duration from now (24h)',
    )
    .option('--list', 'show the deny-list instead')
    .option(
      '--after <id>',
      'with --list: only entries newer than this id',
      intOption(0, 2 ** 53 - 1),
    )
    .option('--include-expired', 'with --list: include entries that no longer apply')
    .addHelpText(
      'after',
      `
Agents and relying parties pick new entries up incrementally (GET /v1/revocations?after=ID).
Give --expires-at to let an entry lapse once what it revokes has expired anyway.`,
    )
    .action(async (opts: RevokeOptions, cmd: Command) => {
      const g = ctx.globals(cmd)
      if (opts.list) {
        await ctx.withBackend(cmd, async (backend) => {
          const page = await backend.revocations.list({
            ...(opts.after === undefined ? {} : { after: opts.after }),
            ...(opts.includeExpired ? { includeExpired: true } : {}),
          })
          if (g.json) return ctx.out(JSON.stringify(page) + '\n')
          if (page.items.length === 0) return ctx.out('the deny-list is empty\n')
          return ctx.out(renderTable(revocationColumns, page.items))
        })
        return
      }
      if (opts.lease !== undefined) {
        if (opts.spiffeId ?? opts.serial ?? opts.jti ?? opts.agent) {
          throw new TesseraError('TSR_VALIDATION', '--lease goes alone')
        }
        return revokeLease(ctx, cmd, opts.lease, opts.reason)
      }
      const targets = (
        [
          ['spiffe_id', opts.spiffeId],
          ['serial', opts.serial],
          ['jti', opts.jti],
          ['agent', opts.agent],
        ] as [RevocationTarget, string | undefined][]
      ).filter((t): t is [RevocationTarget, string] => t[1] !== undefined)
      if (targets.length !== 1) {
        throw new TesseraError(
          'TSR_VALIDATION',
          'give exactly one of --spiffe-id, --serial, --jti, --agent (or --list)',
        )
      }
      const expiresAt =
        opts.expiresAt === undefined
          ? undefined
          : parseTimeOption(opts.expiresAt, {
              option: '--expires-at',
              now: ctx.io.clock.now(),
              direction: 'future',
            })
      const [targetType, value] = targets[0]!
      await ctx.withBackend(cmd, async (backend) => {
        const entry = await backend.revocations.add({
          targetType,
          value,
          ...(opts.reason === undefined ? {} : { reason: opts.reason }),
          ...(expiresAt === undefined ? {} : { expiresAt }),
        })
        if (g.json) return ctx.out(JSON.stringify(entry) + '\n')
        return ctx.out(
          `revoked ${label(entry.targetType)} ${entry.value} (deny-list entry ${entry.id}` +
            `${entry.expiresAt ? `, until ${entry.expiresAt}` : ''})\n`,
        )
      })
    })
}

const label = (t: RevocationTarget) =>
  ({ spiffe_id: 'SPIFFE ID', serial: 'serial', jti: 'jti', agent: 'agent' })[t]

const revocationColumns = [
  { header: 'ID', value: (r: RevocationView) => String(r.id) },
  { header: 'TYPE', value: (r: RevocationView) => label(r.targetType) },
  { header: 'VALUE', value: (r: RevocationView) => r.value, maxWidth: 60 },
  { header: 'REASON', value: (r: RevocationView) => r.reason ?? '', maxWidth: 40 },
  { header: 'CREATED', value: (r: RevocationView) => r.createdAt },
  { header: 'EXPIRES', value: (r: RevocationView) => r.expiresAt ?? 'never' },
  { header: 'BY', value: (r: RevocationView) => r.createdBy ?? '' },
]
