import type { Command } from 'commander'
import { tokenScopes, type TokenScope } from '../../store/schema.js'
import type { CommandContext } from '../context.js'
import { listOf } from '../options.js'
import { renderTable } from '../table.js'
import { parseDurationSeconds } from '../time.js'

/** `tessera api-token create|list|revoke`: through the server (admin scope) or on the store. */
export function registerApiTokenCommands(program: Command, ctx: CommandContext): void {
  const apiToken = program.command('api-token').description('API tokens for callers of the server')

  apiToken
    .command('create')
    .description('create a token; the token itself is printed this once')
    .requiredOption('--name <name>', 'what the token is for, e.g. ci-importer')
    .requiredOption(
      '--scope <scope...>',
      `one or more of ${tokenScopes.join(', ')}`,
      listOf(tokenScopes),
    )
    .option('--ttl <duration>', 'lifetime, e.g. 90d (default: no expiry)')
    .action(async (opts: { name: string; scope: TokenScope[]; ttl?: string }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const ttlSeconds =
        opts.ttl === undefined ? undefined : parseDurationSeconds(opts.ttl, '--ttl')
      await ctx.withBackend(cmd, async (backend) => {
        const created = await backend.tokens.create({
          name: opts.name,
          scopes: [...new Set(opts.scope)],
          ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
        })
        if (g.json) {
          await ctx.out(JSON.stringify(created) + '\n')
          return
        }
        await ctx.out(
          `created API token ${created.id} (${created.name}, scopes ${created.scopes.join(',')}, ` +
            `expires ${created.expiresAt ?? 'never'})\n\n    ${created.token}\n\n` +
            `It is shown only now; the server keeps only its hash.\n`,
        )
      })
    })

  apiToken
    .command('list')
    .description('list tokens (never their secrets)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const items = await backend.tokens.list()
        if (g.json) {
          await ctx.out(JSON.stringify({ items }) + '\n')
          return
        }
        if (items.length === 0) {
          await ctx.out('no API tokens\n')
          return
        }
        await ctx.out(
          renderTable(
            [
              { header: 'ID', value: (t) => t.id },
              { header: 'NAME', value: (t) => t.name, maxWidth: 40 },
              { header: 'SCOPES', value: (t) => t.scopes.join(',') },
              { header: 'CREATED', value: (t) => t.createdAt },
              { header: 'EXPIRES', value: (t) => t.expiresAt ?? 'never' },
              { header: 'LAST USED', value: (t) => t.lastUsedAt ?? 'never' },
              { header: 'STATUS', value: (t) => status(t, ctx.io.clock.now()) },
            ],
            items,
          ),
        )
      })
    })

  apiToken
    .command('revoke')
    .description('revoke a token by id')
    .argument('<id>', 'token id (from api-token list)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        await backend.tokens.revoke(id)
        await ctx.out(
          g.json ? JSON.stringify({ id, revoked: true }) + '\n' : `revoked API token ${id}\n`,
        )
      })
    })
}

function status(t: { revokedAt?: string | null; expiresAt?: string | null }, now: Date): string {
  if (t.revokedAt) return 'revoked'
  if (t.expiresAt && Date.parse(t.expiresAt) <= now.getTime()) return 'expired'
  return 'active'
}
