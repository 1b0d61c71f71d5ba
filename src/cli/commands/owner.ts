import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type { Backend } from '../backend.js'
import type { CommandContext } from '../context.js'
import type { GovernAdmin } from '../govern-admin.js'
import { oneOf } from '../options.js'
import { cleanCell, renderTable } from '../table.js'

export function governOf(backend: Backend): GovernAdmin {
  if (!backend.govern)
    throw new TesseraError('TSR_CONFIG', `${backend.location} offers no owners or policy`)
  return backend.govern
}

export async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new TesseraError(
      'TSR_IMPORT_FILE',
      `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    )
  }
}

/** `tessera owner import|list|show|assign|codeowners`: people, teams and who owns what. */
export function registerOwnerCommands(program: Command, ctx: CommandContext): void {
  const owner = program.command('owner').description('people and teams, and who owns each identity')

  owner
    .command('import')
    .description(
      'import people and teams from SCIM 2.0 JSON (Users/Groups) or CSV (docs/ownership.md)',
    )
    .argument('<file>', 'a SCIM ListResponse, resource or array, or a CSV file')
    .option(
      '--format <format>',
      'scim, csv or auto (by the first character)',
      oneOf(['scim', 'csv', 'auto'] as const),
      'auto',
    )
    .option('--source <name>', 'source recorded on the facts (default: scim or csv)')
    .action(
      async (
        file: string,
        opts: { format: 'scim' | 'csv' | 'auto'; source?: string },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        const content = await readText(file, 'owners file')
        await ctx.withBackend(cmd, async (backend) => {
          const r = await governOf(backend).importOwners(content, {
            format: opts.format,
            ...(opts.source ? { source: opts.source } : {}),
          })
          if (g.json) return ctx.out(JSON.stringify(r) + '\n')
          if (r.unmatchedMembers.length)
            ctx.note(
              `warning: ${r.unmatchedMembers.length} group members matched no user: ${r.unmatchedMembers.slice(0, 5).join(', ')}`,
            )
          return ctx.out(
            `imported ${r.people} people (${r.departed} departed) and ${r.teams} teams: ${r.inserted} new, ${r.changed} changed, ${r.unchanged} unchanged\n`,
          )
        })
      },
    )

  owner
    .command('list')
    .description('list people and teams')
    .option('--type <type>', 'person or team', oneOf(['person', 'team'] as const))
    .option(
      '--status <status>',
      'active, departed or suspended',
      oneOf(['active', 'departed', 'suspended'] as const),
    )
    .option('--team <ref>', 'members of this team')
    .option('--after <ref>', 'the page after this ref')
    .action(
      async (
        opts: {
          type?: 'person' | 'team'
          status?: 'active' | 'departed' | 'suspended'
          team?: string
          after?: string
        },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        await ctx.withBackend(cmd, async (backend) => {
          const page = await governOf(backend).listOwners(opts)
          if (g.json) return ctx.out(JSON.stringify(page) + '\n')
          if (page.items.length === 0)
            return ctx.out('no owners (import some with "tessera owner import FILE")\n')
          let out = renderTable(
            [
              { header: 'REF', value: (o) => o.ref },
              { header: 'TYPE', value: (o) => o.ownerType },
              { header: 'NAME', value: (o) => o.name, maxWidth: 40 },
              { header: 'STATUS', value: (o) => o.status },
              { header: 'TEAMS', value: (o) => o.teams.join(','), maxWidth: 40 },
              { header: 'SOURCE', value: (o) => o.source },
            ],
            page.items,
          )
          if (page.nextAfter) out += `more: --after ${cleanCell(page.nextAfter)}\n`
          return ctx.out(out)
        })
      },
    )

  owner
    .command('show')
    .description(
      "an identity's owner, the evidence for it and the confidence; exit 1 when orphaned",
    )
    .argument('<identity>', 'identity id or ref')
    .action(async (identity: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const o = await governOf(backend).ownership(identity)
        if (!o) throw new TesseraError('TSR_NOT_FOUND', `no identity ${identity}`)
        if (o.orphaned) ctx.setExitCode(1)
        if (g.json) return ctx.out(JSON.stringify(o) + '\n')
        const who = o.owner
          ? `${cleanCell(o.owner.ref)} (${o.owner.ownerType ?? 'unknown'}, ${o.owner.status})`
          : 'none'
        let out = `identity:   ${cleanCell(o.identityRef)} (${o.kind})\nowner:      ${who}\nconfidence: ${o.confidence}\n`
        if (o.orphaned)
          out += `ORPHANED:   ${o.orphanReason === 'owner-departed' ? 'the owner has departed' : 'no owner found'}\n`
        out += 'evidence:\n'
        if (o.evidence.length === 0) out += '  (none)\n'
        o.evidence.forEach((e, i) => {
          out += `  ${i === 0 ? '*' : '-'} ${e.step.padEnd(13)} ${cleanCell(e.owner)} (${e.confidence}): ${cleanCell(e.detail)}\n`
        })
        return ctx.out(out)
      })
    })

  owner
    .command('assign')
    .description(
      'assign an owner explicitly (highest confidence; the previous assignment is kept as history)',
    )
    .argument('<identity>', 'identity id or ref')
    .argument('<owner>', 'owner ref: a person (email) or a team')
    .option('--reason <text>', 'why, kept with the assignment')
    .action(async (identity: string, ownerRef: string, opts: { reason?: string }, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const a = await governOf(backend).assign(identity, ownerRef, opts.reason)
        if (g.json) return ctx.out(JSON.stringify(a) + '\n')
        return ctx.out(`${cleanCell(a.identityRef)} is owned by ${cleanCell(a.owner)} (explicit)\n`)
      })
    })

  owner
    .command('codeowners')
    .description("store a repository's CODEOWNERS file for ownership resolution")
    .argument(
      '<repository>',
      'the repository as credential locations name it, e.g. github.com/acme/api',
    )
    .argument('<file>', 'the CODEOWNERS file')
    .action(async (repository: string, file: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const content = await readText(file, 'CODEOWNERS file')
      await ctx.withBackend(cmd, async (backend) => {
        await governOf(backend).setCodeowners(repository, content)
        if (g.json) return ctx.out(JSON.stringify({ repository }) + '\n')
        return ctx.out(`stored CODEOWNERS for ${cleanCell(repository)}\n`)
      })
    })
}
