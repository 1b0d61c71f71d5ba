import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type { Drift, ObservedWorkload } from '../../lifecycle/reconcile/index.js'
import type { CommandContext } from '../context.js'
import { intOption } from '../options.js'
import { renderTable } from '../table.js'

/** `tessera reconcile [--cleanup] [--stale-hours N] [--reports FILE]`: drift between desired and observed. */
export function registerReconcileCommand(program: Command, ctx: CommandContext): void {
  program
    .command('reconcile')
    .description(
      'compare registration entries and registry identities with what runs (SVID issuance, Kubernetes, agent reports) and what clouds list; drift becomes findings',
    )
    .option(
      '--stale-hours <n>',
      'an entry with no workload this long is stale',
      intOption(1, 87_600),
      24,
    )
    .option(
      '--reports <file>',
      'agent reports of attested workloads (JSON, docs/detection.md#reconciliation)',
    )
    .option('--cleanup', 'delete stale entries (each deletion is audited)')
    .addHelpText(
      'after',
      `
Runs on a local store (--data-dir / --database). Exit code 1 when there is drift.`,
    )
    .action(
      async (opts: { staleHours: number; reports?: string; cleanup?: boolean }, cmd: Command) => {
        const g = ctx.globals(cmd)
        let reported: ObservedWorkload[] | undefined
        const { parseAgentReport, reconcile } = await import('../../lifecycle/reconcile/index.js')
        if (opts.reports !== undefined) {
          let doc: unknown
          try {
            doc = JSON.parse(readFileSync(opts.reports, 'utf8'))
          } catch (err) {
            throw new TesseraError('TSR_IMPORT_FILE', `${opts.reports}: ${(err as Error).message}`)
          }
          reported = parseAgentReport(doc)
        }
        await ctx.withBackend(cmd, async (backend) => {
          if (!backend.store) {
            throw new TesseraError(
              'TSR_CONFIG',
              'reconcile runs on a store opened here: give --data-dir or --database (the server runs it on its own schedule)',
            )
          }
          const store = backend.store
          const user = ctx.io.env.USER ?? ctx.io.env.LOGNAME ?? 'local'
          const { createEntries } = await import('../../entries/entries.js')
          const report = await reconcile(
            {
              store,
              clock: ctx.io.clock,
              entries: {
                delete: (id) =>
                  createEntries({ store, clock: ctx.io.clock }).delete(id, {
                    actor: `cli:${user}`,
                  }),
              },
            },
            {
              staleHours: opts.staleHours,
              cleanup: opts.cleanup === true,
              ...(reported ? { reported } : {}),
            },
          )
          if (report.drift.length > 0) ctx.setExitCode(1)
          if (g.json) return ctx.out(JSON.stringify(report) + '\n')
          let text =
            report.drift.length === 0
              ? 'no drift\n'
              : renderTable(driftColumns, report.drift) +
                '\n' +
                Object.entries(report.counts)
                  .filter(([, n]) => n > 0)
                  .map(([rule, n]) => `${rule}: ${n}`)
                  .join('\n') +
                '\n'
          for (const c of report.cleaned)
            text += `deleted stale entry ${c.entryId} (${c.spiffeId})\n`
          return ctx.out(text)
        })
      },
    )
}

const driftColumns = [
  { header: 'RULE', value: (d: Drift) => d.rule.replace(/^drift-/, '') },
  { header: 'SEVERITY', value: (d: Drift) => d.severity },
  {
    header: 'SUBJECT',
    value: (d: Drift) => d.subjectRef,
    maxWidth: 70,
    truncate: 'middle' as const,
  },
  { header: 'OWNER', value: (d: Drift) => d.ownerRef },
]
