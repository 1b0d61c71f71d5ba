import { readFileSync, statSync } from 'node:fs'
import { basename } from 'node:path'
import { gunzipSync } from 'node:zlib'
import type { Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type { UnusedGrant, UsageFormat } from '../../inventory/usage/index.js'
import type { CommandContext } from '../context.js'
import { oneOf } from '../options.js'
import { renderTable } from '../table.js'
import { parseTimeOption } from '../time.js'
import { observeAdminOf } from './access.js'

const formats = ['cloudtrail', 'k8s-audit', 'jsonl'] as const satisfies readonly UsageFormat[]
const maxFileBytes = 512 * 1024 * 1024

/** Reads a log file, gunzipping it when it is gzip (CloudTrail delivers `.json.gz`). */
function readLog(file: string): string {
  let size: number
  try {
    size = statSync(file).size
  } catch (err) {
    throw new TesseraError('TSR_IMPORT_FILE', `cannot read ${file}: ${(err as Error).message}`)
  }
  if (size > maxFileBytes) {
    throw new TesseraError('TSR_IMPORT_FILE', `${file} is larger than 512 MiB; split it`)
  }
  const raw = readFileSync(file)
  const gz = raw.length > 2 && raw[0] === 0x1f && raw[1] === 0x8b
  try {
    return (gz ? gunzipSync(raw, { maxOutputLength: maxFileBytes }) : raw).toString('utf8')
  } catch (err) {
    throw new TesseraError('TSR_IMPORT_FILE', `${file}: ${(err as Error).message}`)
  }
}

/** `tessera usage import FILE --format F` and `tessera usage unused --since 90d`. */
export function registerUsageCommands(program: Command, ctx: CommandContext): void {
  const usage = program
    .command('usage')
    .description('observed use of grants: import access logs, find what is granted but unused')

  usage
    .command('import')
    .description(
      'read an access log, aggregate it per identity, resource, action and hour, and record it (re-importing the same file changes nothing)',
    )
    .argument('<file>', 'the log (CloudTrail .json or .json.gz, audit log JSON lines, JSON Lines)')
    .requiredOption('--format <format>', formats.join(' | '), oneOf(formats))
    .option(
      '--cluster <name>',
      'k8s-audit: the cluster name the Kubernetes connector uses',
      'default',
    )
    .option('--source <name>', 'the usage source (default: FORMAT:FILE-NAME)')
    .addHelpText(
      'after',
      `
Formats: docs/detection.md#usage-import. Entries that cannot be read are listed on stderr and
skipped; the exit code is then 1.`,
    )
    .action(
      async (
        file: string,
        opts: { format: UsageFormat; cluster: string; source?: string },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        const { parseUsageLog, aggregateUsage } = await import('../../inventory/usage/index.js')
        const parsed = parseUsageLog(readLog(file), { format: opts.format, cluster: opts.cluster })
        const aggregated = aggregateUsage(parsed.records)
        const source = opts.source ?? `${opts.format}:${basename(file)}`
        const result = await ctx.withBackend(cmd, (backend) =>
          observeAdminOf(backend).recordUsage(aggregated, { source }),
        )
        for (const p of parsed.problems) ctx.note(`${file}:${p.line}: ${p.message}`)
        if (parsed.problems.length > 0) ctx.setExitCode(1)
        const summary = {
          source,
          read: parsed.read,
          records: parsed.records.length,
          ignored: parsed.ignored,
          problems: parsed.problems.length,
          rows: aggregated.rows.length,
          ...result,
        }
        if (g.json)
          return ctx.out(JSON.stringify({ ...summary, problemList: parsed.problems }) + '\n')
        return ctx.out(
          `${file}: ${summary.read} entries, ${summary.records} accesses (${summary.ignored} skipped as failed or partial, ${summary.problems} unreadable)\n` +
            `${summary.rows} hourly usage rows: ${result.written} written, ${result.unchanged} unchanged; last_used_at raised on ${result.identitiesTouched} identities and ${result.credentialsTouched} credentials\n`,
        )
      },
    )

  usage
    .command('unused')
    .description('grants whose actions had no usage since a time (granted but unused)')
    .option('--since <time>', 'an instant or a duration ago', '90d')
    .option('--include-newer-grants', 'also grants made after --since')
    .action(async (opts: { since: string; includeNewerGrants?: boolean }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const since = parseTimeOption(opts.since, {
        option: '--since',
        now: ctx.io.clock.now(),
        direction: 'past',
      })
      await ctx.withBackend(cmd, async (backend) => {
        const items = await observeAdminOf(backend).unused(since, opts.includeNewerGrants === true)
        if (items.length > 0) ctx.setExitCode(1)
        if (g.json) return ctx.out(JSON.stringify({ since: since.toISOString(), items }) + '\n')
        if (items.length === 0)
          return ctx.out(`every granted action was used since ${since.toISOString()}\n`)
        return ctx.out(renderTable(unusedColumns, items))
      })
    })
}

const unusedColumns = [
  {
    header: 'IDENTITY',
    value: (r: UnusedGrant) => r.identityRef,
    maxWidth: 60,
    truncate: 'middle' as const,
  },
  {
    header: 'RESOURCE',
    value: (r: UnusedGrant) => r.resourceRef,
    maxWidth: 50,
    truncate: 'middle' as const,
  },
  { header: 'UNUSED', value: (r: UnusedGrant) => r.unusedActions.join(','), maxWidth: 40 },
  { header: 'USED', value: (r: UnusedGrant) => r.usedActions.join(','), maxWidth: 30 },
  { header: 'LAST USED', value: (r: UnusedGrant) => r.lastUsedAt },
]
