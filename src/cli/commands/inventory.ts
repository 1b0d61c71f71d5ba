import { createWriteStream, statSync } from 'node:fs'
import { once } from 'node:events'
import { Option, type Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type { IdentityFilter, IdentitySummary, Inventory } from '../../inventory/inventory-types.js'
import { identityKinds, type IdentityKind } from '../../store/schema.js'
import { linkTypes, type LinkType } from '../../inventory/inventory-types.js'
import type { CommandContext } from '../context.js'
import { writeAll } from '../context.js'
import { csvRow } from '../csv.js'
import { exitCodes } from '../exit-codes.js'
import { importObservations } from '../import.js'
import { intOption, listOf, oneOf, timeText } from '../options.js'
import { createDelayedProgress, formatBytes, formatCount } from '../progress.js'
import { parseTimeOption } from '../time.js'
import { renderGraph, renderIdentityDetail, renderIdentityList, renderStats } from '../views.js'

/** Invalid import lines printed one by one before the rest are only counted. */
const maxInvalidShown = 20

export function registerInventoryCommands(program: Command, ctx: CommandContext): void {
  const inventory = program
    .command('inventory')
    .description('the identity inventory: import, export, list, show, graph, stats')

  inventory
    .command('import')
    .description('ingest observations from a JSON Lines file (one observation per line)')
    .argument('<file>', 'JSON Lines file of observations')
    .addOption(
      new Option(
        '--full',
        'full run for every source in the file: close its facts the file does not mention',
      ),
    )
    .addOption(
      new Option(
        '--source-run-full <source...>',
        'full run for these sources only (close their facts the file does not mention)',
      ).conflicts('full'),
    )
    .option('--batch <n>', 'observations per ingest call', intOption(1, 10_000), 5000)
    .addHelpText(
      'after',
      `
Invalid lines are reported on stderr as "line N: reason" (the first ${maxInvalidShown}, then a count) and
the valid lines are still ingested. Exit code 0 when every line was valid, 1 when some were not.
Full runs are finished as succeeded only when every line was valid; otherwise they are marked
failed and close nothing.`,
    )
    .action(
      async (
        file: string,
        opts: { full?: boolean; sourceRunFull?: string[]; batch: number },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        let size: number
        try {
          const st = statSync(file)
          if (!st.isFile()) throw new Error('not a regular file')
          size = st.size
        } catch (err) {
          throw new TesseraError(
            'TSR_VALIDATION',
            `cannot import ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          )
        }
        const { readJsonLinesFile } = await import('../../inventory/observation-parse.js')
        await ctx.withBackend(cmd, async (backend) => {
          const started = performance.now()
          const progress = createDelayedProgress({
            enabled: ctx.io.stderr.isTTY === true && !g.json,
            total: size,
            stream: ctx.io.stderr as NodeJS.WriteStream,
            format:
              '{bar} {percentage}% | {done} of {size} | {lines} lines | {rate} obs/s | ETA {eta_formatted}',
          })
          const source = readJsonLinesFile(file)
          let shown = 0
          let hidden = 0
          const errors: { line: number; reason: string }[] = []
          const result = await importObservations({
            entries: source.entries,
            inventory: backend.inventory,
            batchSize: opts.batch,
            ...(opts.full
              ? { full: 'all' as const }
              : opts.sourceRunFull
                ? { full: opts.sourceRunFull }
                : {}),
            onInvalid(line, reason) {
              if (shown < maxInvalidShown) {
                shown++
                if (g.json) errors.push({ line, reason })
                else ctx.note(`line ${line}: ${reason}`)
              } else {
                hidden++
              }
            },
            onBatch(t) {
              const seconds = (performance.now() - started) / 1000
              progress.update(source.bytesRead(), {
                done: formatBytes(source.bytesRead()),
                size: formatBytes(size),
                lines: formatCount(t.lines),
                rate: formatCount(t.received / Math.max(seconds, 0.001)),
              })
            },
          }).finally(() => progress.stop())
          const seconds = (performance.now() - started) / 1000
          const rate = Math.round(result.received / Math.max(seconds, 0.001))
          if (g.json) {
            await ctx.out(
              JSON.stringify({
                file,
                lines: result.lines,
                received: result.received,
                inserted: result.inserted,
                changed: result.changed,
                unchanged: result.unchanged,
                invalid: result.invalid,
                errors,
                seconds: Number(seconds.toFixed(3)),
                rate,
                runs: result.runs,
              }) + '\n',
            )
          } else {
            if (hidden > 0) ctx.note(`… and ${hidden} more invalid lines`)
            let text =
              `imported ${file} into ${backend.location}\n` +
              `  received ${formatCount(result.received)}, inserted ${formatCount(result.inserted)}, ` +
              `changed ${formatCount(result.changed)}, unchanged ${formatCount(result.unchanged)}, ` +
              `invalid ${formatCount(result.invalid)}\n` +
              `  ${seconds.toFixed(1)} s, ${formatCount(rate)} observations/s\n`
            for (const run of result.runs) {
              text += `  full run ${run.id} for ${run.source}: ${run.status}${run.closed === undefined ? '' : `, ${formatCount(run.closed)} facts closed`}\n`
            }
            await ctx.out(text)
          }
          if (result.invalid > 0) ctx.setExitCode(exitCodes.findings)
        })
      },
    )

  inventory
    .command('export')
    .description(
      'write the inventory: observations as JSON Lines (re-importable) or identities as CSV',
    )
    .addOption(
      new Option('--format <format>', 'jsonl or csv').choices(['jsonl', 'csv']).default('jsonl'),
    )
    .option('--at <time>', 'as of this instant or duration ago (2026-03-01, 7d)', timeText)
    .option('--out <file>', 'write here (mode 0600) instead of stdout')
    .action(async (opts: { format: 'jsonl' | 'csv'; at?: string; out?: string }, cmd: Command) => {
      const at =
        opts.at === undefined
          ? undefined
          : parseTimeOption(opts.at, { direction: 'past', now: ctx.io.clock.now(), option: '--at' })
      await ctx.withBackend(cmd, async (backend) => {
        const file =
          opts.out === undefined ? undefined : createWriteStream(opts.out, { mode: 0o600 })
        const write = file ? (text: string) => writeAll(file, text) : ctx.out
        try {
          if (opts.format === 'jsonl') {
            let chunk = ''
            for await (const o of backend.inventory.exportObservations(at ? { at } : {})) {
              chunk += JSON.stringify(o) + '\n'
              if (chunk.length >= 1 << 16) {
                await write(chunk)
                chunk = ''
              }
            }
            if (chunk) await write(chunk)
          } else {
            await write(csvRow(csvHeader))
            for await (const page of allPages(backend.inventory, {
              ...(at ? { at } : {}),
              limit: 1000,
            })) {
              await write(page.map((r) => csvRow(csvValues(r))).join(''))
            }
          }
        } finally {
          if (file) {
            file.end()
            await once(file, 'close')
          }
        }
      })
    })

  inventory
    .command('list')
    .description('list identities, filtered')
    .addOption(new Option('--kind <kind>', 'identity kind').argParser(oneOf(identityKinds)))
    .option('--source <source>', 'source connector, e.g. aws:prod')
    .option('--owner <owner>', 'owner ref (person email or team slug)')
    .option('--state <state>', 'state, e.g. active')
    .option('--unused-since <time>', 'not used since (instant, or duration ago like 90d)', timeText)
    .option(
      '--expires-before <time>',
      'holds a credential expiring before (instant, or duration from now like 30d)',
      timeText,
    )
    .option('--q <text>', 'name contains (case-insensitive)')
    .option('--at <time>', 'as of this instant or duration ago', timeText)
    .option('--limit <n>', 'page size', intOption(1, 1000), 100)
    .option('--all', 'fetch every page')
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(
      async (
        opts: {
          kind?: IdentityKind
          source?: string
          owner?: string
          state?: string
          unusedSince?: string
          expiresBefore?: string
          q?: string
          at?: string
          limit: number
          all?: boolean
          cursor?: string
        },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        const now = ctx.io.clock.now()
        const filter: IdentityFilter = {
          ...(opts.kind ? { kind: opts.kind } : {}),
          ...(opts.source ? { source: opts.source } : {}),
          ...(opts.owner ? { owner: opts.owner } : {}),
          ...(opts.state ? { state: opts.state } : {}),
          ...(opts.q ? { q: opts.q } : {}),
          ...(opts.unusedSince
            ? {
                unusedSince: parseTimeOption(opts.unusedSince, {
                  direction: 'past',
                  now,
                  option: '--unused-since',
                }),
              }
            : {}),
          ...(opts.expiresBefore
            ? {
                expiresBefore: parseTimeOption(opts.expiresBefore, {
                  direction: 'future',
                  now,
                  option: '--expires-before',
                }),
              }
            : {}),
          ...(opts.at
            ? { at: parseTimeOption(opts.at, { direction: 'past', now, option: '--at' }) }
            : {}),
          limit: opts.limit,
          ...(opts.cursor ? { cursor: opts.cursor } : {}),
        }
        await ctx.withBackend(cmd, async (backend) => {
          if (opts.all) {
            const items: IdentitySummary[] = []
            for await (const page of allPages(backend.inventory, filter)) items.push(...page)
            await ctx.out(
              g.json ? JSON.stringify({ items }) + '\n' : renderIdentityList(items, now),
            )
            return
          }
          const page = await backend.inventory.listIdentities(filter)
          if (g.json) {
            await ctx.out(JSON.stringify(page) + '\n')
            return
          }
          await ctx.out(renderIdentityList(page.items, now))
          if (page.nextCursor) ctx.note(`more: add --cursor ${page.nextCursor} (or --all)`)
        })
      },
    )

  inventory
    .command('show')
    .description('one identity with its owner, credentials, grants, usage and edges')
    .argument('<id-or-ref>', 'identity id or external ref')
    .option('--at <time>', 'as of this instant or duration ago', timeText)
    .action(async (idOrRef: string, opts: { at?: string }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const now = ctx.io.clock.now()
      const at = opts.at
        ? parseTimeOption(opts.at, { direction: 'past', now, option: '--at' })
        : undefined
      await ctx.withBackend(cmd, async (backend) => {
        const detail = await backend.inventory.getIdentity(idOrRef, at)
        if (!detail) {
          throw new TesseraError(
            'TSR_NOT_FOUND',
            `no identity ${JSON.stringify(idOrRef)}${at ? ` at ${at.toISOString()}` : ''}`,
          )
        }
        await ctx.out(g.json ? JSON.stringify(detail) + '\n' : renderIdentityDetail(detail, now))
      })
    })

  inventory
    .command('graph')
    .description('the neighbourhood of an identity, credential, owner or resource')
    .argument('<id-or-ref>', 'start node id or ref')
    .option('--depth <n>', 'edges to follow', intOption(1, 6), 2)
    .option('--at <time>', 'as of this instant or duration ago', timeText)
    .option(
      '--edge-type <type...>',
      `only these edge types (${linkTypes.join(', ')})`,
      listOf(linkTypes),
    )
    .option('--limit <n>', 'most nodes', intOption(1, 10_000))
    .action(
      async (
        idOrRef: string,
        opts: { depth: number; at?: string; edgeType?: LinkType[]; limit?: number },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        const now = ctx.io.clock.now()
        const at = opts.at
          ? parseTimeOption(opts.at, { direction: 'past', now, option: '--at' })
          : undefined
        await ctx.withBackend(cmd, async (backend) => {
          const graph = await backend.inventory.neighbourhood(idOrRef, {
            depth: opts.depth,
            ...(at ? { at } : {}),
            ...(opts.edgeType?.length ? { edgeTypes: opts.edgeType } : {}),
            ...(opts.limit ? { limit: opts.limit } : {}),
          })
          if (!graph) throw new TesseraError('TSR_NOT_FOUND', `no node ${JSON.stringify(idOrRef)}`)
          await ctx.out(g.json ? JSON.stringify(graph) + '\n' : renderGraph(graph))
        })
      },
    )

  inventory
    .command('stats')
    .description('counts of current facts')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const stats = await backend.inventory.stats()
        await ctx.out(g.json ? JSON.stringify(stats) + '\n' : renderStats(stats))
      })
    })
}

const csvHeader = [
  'id',
  'ref',
  'kind',
  'name',
  'source',
  'owner',
  'state',
  'created_at',
  'last_used_at',
  'valid_from',
]

function csvValues(r: IdentitySummary): unknown[] {
  return [
    r.id,
    r.ref,
    r.kind,
    r.name,
    r.source,
    r.owner,
    r.state,
    r.createdAt,
    r.lastUsedAt,
    r.validFrom,
  ]
}

/** Every page of a listing, following `nextCursor`. */
export async function* allPages(
  inventory: Inventory,
  filter: IdentityFilter,
): AsyncGenerator<IdentitySummary[]> {
  let cursor = filter.cursor
  for (;;) {
    const page = await inventory.listIdentities({ ...filter, ...(cursor ? { cursor } : {}) })
    if (page.items.length > 0) yield page.items
    if (!page.nextCursor || page.nextCursor === cursor) return
    cursor = page.nextCursor
  }
}
