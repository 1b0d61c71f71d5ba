import type { Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type { EntryInput, EntryPatch } from '../../entries/entry-types.js'
import { formatSelector, parseSelector } from '../../entries/entry-validate.js'
import type { RegistrationEntry } from '../../spiffe/types.js'
import type { Backend } from '../backend.js'
import type { ControlAdmin } from '../control-admin.js'
import type { CommandContext } from '../context.js'
import { collect, intOption } from '../options.js'
import { renderFields, renderTable } from '../table.js'
import { parseDurationSeconds, parseTimeOption } from '../time.js'

/** Repeatable, not comma-split: a selector value may hold commas. */
function repeat(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

export function requireControl(backend: Backend): ControlAdmin {
  if (!backend.control) {
    throw new TesseraError('TSR_CONFIG', `this backend (${backend.location}) has no control plane`)
  }
  return backend.control
}

interface EntryOptions {
  spiffeId?: string
  parentId?: string
  selector?: string[]
  owner?: string
  x509Ttl?: string
  jwtTtl?: string
  dns?: string[]
  federatesWith?: string[]
  hint?: string
  expiresAt?: string
  admin?: boolean
  downstream?: boolean
}

function addEntryOptions(cmd: Command, creating: boolean): Command {
  const need = creating ? ' (required)' : ''
  return cmd
    .option('--spiffe-id <id>', `SPIFFE ID of the workload${need}`)
    .option('--parent-id <id>', `SPIFFE ID of the agent (or node alias) that serves it${need}`)
    .option(
      '--selector <TYPE:KEY:VALUE>',
      `workload selector, repeatable, e.g. unix:uid:1000${need}`,
      repeat,
    )
    .option('--owner <owner>', `person or team answering for this identity${need}`)
    .option('--x509-ttl <duration>', 'X509-SVID lifetime, e.g. 1h (default: server default)')
    .option('--jwt-ttl <duration>', 'JWT-SVID lifetime, e.g. 5m (default: server default)')
    .option('--dns <name...>', 'DNS names for the X509-SVID', collect)
    .option('--federates-with <td...>', 'trust domains whose bundles the workload gets', collect)
    .option('--hint <hint>', 'hint for workloads holding several SVIDs')
    .option('--expires-at <time>', 'when the entry stops being served (instant or duration)')
    .option('--admin', 'the workload may use the admin API')
    .option('--downstream', 'the workload is a downstream signer')
}

function toInput(o: EntryOptions, ctx: CommandContext): Partial<EntryInput> {
  const input: Partial<EntryInput> = {}
  if (o.spiffeId !== undefined) input.spiffeId = o.spiffeId
  if (o.parentId !== undefined) input.parentId = o.parentId
  if (o.selector !== undefined) {
    input.selectors = o.selector.map((s) => parseSelector(s, '--selector'))
  }
  if (o.owner !== undefined) input.owner = o.owner
  if (o.x509Ttl !== undefined) input.x509SvidTtl = parseDurationSeconds(o.x509Ttl, '--x509-ttl')
  if (o.jwtTtl !== undefined) input.jwtSvidTtl = parseDurationSeconds(o.jwtTtl, '--jwt-ttl')
  if (o.dns !== undefined) input.dnsNames = o.dns
  if (o.federatesWith !== undefined) input.federatesWith = o.federatesWith
  if (o.hint !== undefined) input.hint = o.hint
  if (o.expiresAt !== undefined) {
    input.expiresAt = parseTimeOption(o.expiresAt, {
      direction: 'future',
      now: ctx.io.clock.now(),
      option: '--expires-at',
    })
  }
  if (o.admin) input.admin = true
  if (o.downstream) input.downstream = true
  return input
}

export function entryJsonView(e: RegistrationEntry): Record<string, unknown> {
  const { expiresAt, ...rest } = e
  return { ...rest, ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}) }
}

function renderEntry(e: RegistrationEntry): string {
  return renderFields([
    ['id', e.id],
    ['revision', e.revision],
    ['spiffe id', e.spiffeId],
    ['parent id', e.parentId],
    ['selectors', e.selectors.map(formatSelector).join(' ')],
    ['owner', e.owner],
    ['x509 ttl', e.x509SvidTtl === undefined ? 'default' : `${e.x509SvidTtl}s`],
    ['jwt ttl', e.jwtSvidTtl === undefined ? 'default' : `${e.jwtSvidTtl}s`],
    ['dns names', e.dnsNames.length ? e.dnsNames.join(' ') : undefined],
    ['federates with', e.federatesWith.length ? e.federatesWith.join(' ') : undefined],
    ['hint', e.hint],
    ['admin', e.admin ? 'yes' : undefined],
    ['downstream', e.downstream ? 'yes' : undefined],
    ['expires at', e.expiresAt?.toISOString()],
  ])
}

/** `tessera entry create|list|show|update|delete`: SPIFFE registration entries. */
export function registerEntryCommands(program: Command, ctx: CommandContext): void {
  const entry = program.command('entry').description('SPIFFE registration entries')

  addEntryOptions(
    entry.command('create').description('create a registration entry (an owner is required)'),
    true,
  ).action(async (opts: EntryOptions, cmd: Command) => {
    const g = ctx.globals(cmd)
    const input = toInput(opts, ctx)
    const missing = (
      [
        ['--spiffe-id', input.spiffeId],
        ['--parent-id', input.parentId],
        ['--selector', input.selectors],
        ['--owner', input.owner],
      ] as const
    ).filter(([, v]) => v === undefined)
    if (missing.length > 0) {
      throw new TesseraError(
        'TSR_VALIDATION',
        `entry create needs ${missing.map(([o]) => o).join(', ')}` +
          (input.owner === undefined ? ' (every entry has an owner)' : ''),
      )
    }
    await ctx.withBackend(cmd, async (backend) => {
      const created = await requireControl(backend).createEntry(input as EntryInput)
      await ctx.out(
        g.json
          ? JSON.stringify(entryJsonView(created)) + '\n'
          : `created entry ${created.id} (revision ${created.revision})\n` + renderEntry(created),
      )
    })
  })

  entry
    .command('list')
    .description('list registration entries')
    .option('--spiffe-id <id>', 'only this SPIFFE ID')
    .option('--parent-id <id>', 'only entries with this parent')
    .option('--selector <TYPE:KEY:VALUE>', 'only entries with this selector')
    .option('--owner <owner>', 'only entries of this owner')
    .option('--limit <n>', 'page size', intOption(1, 1000), 100)
    .option('--cursor <cursor>', 'nextCursor of the previous page')
    .option('--all', 'follow cursors to the end')
    .action(
      async (
        opts: {
          spiffeId?: string
          parentId?: string
          selector?: string
          owner?: string
          limit: number
          cursor?: string
          all?: boolean
        },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        await ctx.withBackend(cmd, async (backend) => {
          const control = requireControl(backend)
          const items: RegistrationEntry[] = []
          let cursor = opts.cursor
          let nextCursor: string | null
          do {
            const page = await control.listEntries({
              ...(opts.spiffeId ? { spiffeId: opts.spiffeId } : {}),
              ...(opts.parentId ? { parentId: opts.parentId } : {}),
              ...(opts.owner ? { owner: opts.owner } : {}),
              ...(opts.selector ? { selector: parseSelector(opts.selector, '--selector') } : {}),
              limit: opts.limit,
              ...(cursor ? { cursor } : {}),
            })
            items.push(...page.items)
            nextCursor = page.nextCursor
            cursor = nextCursor ?? undefined
          } while (opts.all && cursor)
          if (g.json) {
            await ctx.out(JSON.stringify({ items: items.map(entryJsonView), nextCursor }) + '\n')
            return
          }
          if (items.length === 0) {
            await ctx.out('no registration entries\n')
            return
          }
          await ctx.out(
            renderTable(
              [
                { header: 'ID', value: (e) => e.id },
                { header: 'SPIFFE ID', value: (e) => e.spiffeId, maxWidth: 60, truncate: 'middle' },
                { header: 'PARENT', value: (e) => e.parentId, maxWidth: 50, truncate: 'middle' },
                {
                  header: 'SELECTORS',
                  value: (e) => e.selectors.map(formatSelector).join(' '),
                  maxWidth: 50,
                },
                { header: 'OWNER', value: (e) => e.owner, maxWidth: 30 },
                { header: 'REV', value: (e) => e.revision, align: 'right' },
              ],
              items,
            ) + (nextCursor ? `more: --cursor ${nextCursor}\n` : ''),
          )
        })
      },
    )

  entry
    .command('show')
    .description('show one registration entry')
    .argument('<id>', 'entry id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const found = await requireControl(backend).getEntry(id)
        if (!found) throw new TesseraError('TSR_NOT_FOUND', `no registration entry ${id}`)
        await ctx.out(g.json ? JSON.stringify(entryJsonView(found)) + '\n' : renderEntry(found))
      })
    })

  addEntryOptions(
    entry
      .command('update')
      .description('change a registration entry (options given replace the stored values)')
      .argument('<id>', 'entry id')
      .option('--clear <field...>', 'clear optional fields: x509-ttl, jwt-ttl, hint, expires-at'),
    false,
  ).action(async (id: string, opts: EntryOptions & { clear?: string[] }, cmd: Command) => {
    const g = ctx.globals(cmd)
    const patch: EntryPatch = toInput(opts, ctx)
    const clearable = {
      'x509-ttl': 'x509SvidTtl',
      'jwt-ttl': 'jwtSvidTtl',
      hint: 'hint',
      'expires-at': 'expiresAt',
    } as const
    for (const field of opts.clear ?? []) {
      const key = clearable[field as keyof typeof clearable]
      if (!key) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `--clear: ${JSON.stringify(field)} is not one of ${Object.keys(clearable).join(', ')}`,
        )
      }
      ;(patch as Record<string, unknown>)[key] = null
    }
    if (Object.keys(patch).length === 0) {
      throw new TesseraError('TSR_VALIDATION', 'entry update: give at least one change')
    }
    await ctx.withBackend(cmd, async (backend) => {
      const updated = await requireControl(backend).updateEntry(id, patch)
      await ctx.out(
        g.json
          ? JSON.stringify(entryJsonView(updated)) + '\n'
          : `updated entry ${updated.id} (revision ${updated.revision})\n` + renderEntry(updated),
      )
    })
  })

  entry
    .command('delete')
    .description('delete a registration entry (its history is kept)')
    .argument('<id>', 'entry id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const deleted = await requireControl(backend).deleteEntry(id)
        await ctx.out(
          g.json
            ? JSON.stringify({ ...deleted, deleted: true }) + '\n'
            : `deleted entry ${deleted.id} (revision ${deleted.revision})\n`,
        )
      })
    })
}
