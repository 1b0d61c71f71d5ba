import { basename } from 'node:path'
import type { Command } from 'commander'
import type { CommandContext } from '../context.js'
import { intOption } from '../options.js'
import { cleanCell, renderTable } from '../table.js'
import { governOf, readText } from './owner.js'

/** `tessera policy test|apply|history|diff`: governance as code (docs/governance-policy.md). */
export function registerPolicyCommands(program: Command, ctx: CommandContext): void {
  const policy = program
    .command('policy')
    .description('governance policy (tessera.policy.yaml): test, apply, history, diff')

  policy
    .command('test')
    .description(
      'dry run: what FILE would newly flag over the current inventory, against the active policy; exit 1 if anything',
    )
    .argument('<file>', 'a tessera.policy.yaml')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const body = await readText(file, 'policy file')
      await ctx.withBackend(cmd, async (backend) => {
        const r = await governOf(backend).testPolicy(body, basename(file))
        if (r.newViolations.length > 0) ctx.setExitCode(1)
        if (g.json) return ctx.out(JSON.stringify(r) + '\n')
        const against = r.against === null ? 'no active policy' : `active version ${r.against}`
        let out = `${r.newViolations.length} new violations, ${r.resolved.length} resolved (against ${against})\n`
        if (r.newViolations.length > 0) {
          out += renderTable(
            [
              { header: 'RULE', value: (f) => f.rule },
              { header: 'SEVERITY', value: (f) => f.severity },
              {
                header: 'SUBJECT',
                value: (f) => `${f.subjectType}:${f.subjectRef}`,
                maxWidth: 70,
                truncate: 'middle',
              },
              {
                header: 'WHY',
                value: (f) => String(f.evidence.reason ?? f.evidence.fix ?? ''),
                maxWidth: 70,
              },
            ],
            r.newViolations,
          )
        }
        return ctx.out(out)
      })
    })

  policy
    .command('apply')
    .description(
      'validate FILE and make it the active policy (a new version; unchanged text makes none)',
    )
    .argument('<file>', 'a tessera.policy.yaml')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const body = await readText(file, 'policy file')
      await ctx.withBackend(cmd, async (backend) => {
        const r = await governOf(backend).applyPolicy(body, basename(file))
        if (g.json) return ctx.out(JSON.stringify(r) + '\n')
        return ctx.out(
          r.changed
            ? `applied policy version ${r.version}\n`
            : `unchanged: version ${r.version} is already active\n`,
        )
      })
    })

  policy
    .command('history')
    .description('every policy version, newest first')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const items = await governOf(backend).policyHistory()
        if (g.json) return ctx.out(JSON.stringify({ items }) + '\n')
        if (items.length === 0) return ctx.out('no policy applied yet\n')
        return ctx.out(
          renderTable(
            [
              { header: 'VERSION', value: (v) => v.version, align: 'right' },
              { header: 'ACTIVE', value: (v) => (v.active ? 'yes' : '') },
              { header: 'CREATED', value: (v) => v.createdAt },
              { header: 'BY', value: (v) => v.createdBy ?? '' },
              { header: 'SHA256', value: (v) => v.sha256.slice(0, 12) },
            ],
            items,
          ),
        )
      })
    })

  policy
    .command('diff')
    .description('what changed from version V1 to V2, path by path')
    .argument('<v1>', 'version', intOption(1, 2 ** 31 - 1))
    .argument('<v2>', 'version', intOption(1, 2 ** 31 - 1))
    .action(async (v1: number, v2: number, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const changes = await governOf(backend).policyDiff(v1, v2)
        if (g.json) return ctx.out(JSON.stringify({ from: v1, to: v2, changes }) + '\n')
        if (changes.length === 0) return ctx.out(`versions ${v1} and ${v2} are the same policy\n`)
        const show = (v: unknown) => cleanCell(JSON.stringify(v))
        return ctx.out(
          changes
            .map((c) =>
              c.change === 'added'
                ? `+ ${c.path}: ${show(c.after)}`
                : c.change === 'removed'
                  ? `- ${c.path}: ${show(c.before)}`
                  : `~ ${c.path}: ${show(c.before)} -> ${show(c.after)}`,
            )
            .join('\n') + '\n',
        )
      })
    })
}
