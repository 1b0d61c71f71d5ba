import type { Command } from 'commander'
import {
  renderCompliance,
  renderOwnerReport,
  reportFormats,
  type ReportFormat,
} from '../../reports/report-render.js'
import type { CommandContext } from '../context.js'
import { oneOf } from '../options.js'
import { governOf } from './owner.js'

/** `tessera report owner|compliance --format json|csv|html` (docs/reports.md). */
export function registerReportCommands(program: Command, ctx: CommandContext): void {
  const report = program
    .command('report')
    .description("reports: an owner's view, the compliance summary")
  // JSON unless asked otherwise: a report is data first.
  const format = (_cmd: Command, opts: { format?: ReportFormat }): ReportFormat =>
    opts.format ?? 'json'

  report
    .command('owner')
    .description('everything a person or team owns, and what to fix first')
    .argument('<owner>', 'owner ref: a person (email) or a team')
    .option('--format <format>', 'json, csv or html (a printable page)', oneOf(reportFormats))
    .action(async (owner: string, opts: { format?: ReportFormat }, cmd: Command) => {
      await ctx.withBackend(cmd, async (backend) => {
        const r = await governOf(backend).ownerReport(owner)
        return ctx.out(renderOwnerReport(r, format(cmd, opts)))
      })
    })

  report
    .command('compliance')
    .description(
      'counts by kind, owner coverage, key-age distribution, rotation coverage, open findings by severity',
    )
    .option('--format <format>', 'json, csv or html (a printable page)', oneOf(reportFormats))
    .action(async (opts: { format?: ReportFormat }, cmd: Command) => {
      await ctx.withBackend(cmd, async (backend) => {
        const r = await governOf(backend).complianceReport()
        return ctx.out(renderCompliance(r, format(cmd, opts)))
      })
    })
}
