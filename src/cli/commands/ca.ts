import type { Command } from 'commander'
import type { CaKeyPurpose } from '../../ca/ca.js'
import { TesseraError } from '../../errors.js'
import type { CaKeyJson } from '../../server/routes/ca-admin.js'
import type { Backend } from '../backend.js'
import type { CaAdmin } from '../ca-admin.js'
import type { CommandContext } from '../context.js'
import { oneOf } from '../options.js'
import { renderTable } from '../table.js'

const purposes = ['x509_ca', 'jwt'] as const

export function caAdminOf(backend: Backend): CaAdmin {
  if (!backend.ca) throw new TesseraError('TSR_CONFIG', `${backend.location} offers no CA admin`)
  return backend.ca
}

/** `tessera ca keys|taint|revoke`: the trust domain's CA keys and emergency rotation. */
export function registerCaCommands(program: Command, ctx: CommandContext): void {
  const ca = program
    .command('ca')
    .description("the trust domain's CA keys: list them, and taint then revoke one in an emergency")

  ca.command('keys')
    .description('list the CA keys: purpose, slot, validity, tainted, revoked (never key material)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const keys = await caAdminOf(backend).keys()
        if (g.json) return ctx.out(JSON.stringify({ items: keys }) + '\n')
        if (keys.length === 0) return ctx.out('no CA keys yet (the server creates them)\n')
        return ctx.out(renderTable(keyColumns, keys))
      })
    })

  ca.command('taint')
    .description(
      'emergency rotation, step 1: the key stops signing now (it stays in the bundle) and a successor becomes active',
    )
    .argument('[id]', 'the key id (from "ca keys")')
    .option(
      '--purpose <purpose>',
      `taint the active key of this purpose: ${purposes.join(' or ')}`,
      oneOf(purposes),
    )
    .addHelpText(
      'after',
      `
Then let workloads re-mint their SVIDs (agents do so at once: the successor is already published),
and run "tessera ca revoke ID" to drop the tainted key from the bundle.`,
    )
    .action(async (id: string | undefined, opts: { purpose?: CaKeyPurpose }, cmd: Command) => {
      const g = ctx.globals(cmd)
      if ((id === undefined) === (opts.purpose === undefined)) {
        throw new TesseraError('TSR_VALIDATION', 'give a key id or --purpose, not both')
      }
      await ctx.withBackend(cmd, async (backend) => {
        const result = await caAdminOf(backend).taint(
          id === undefined ? { purpose: opts.purpose! } : { keyId: id },
        )
        if (g.json) return ctx.out(JSON.stringify(result) + '\n')
        return ctx.out(
          `tainted ${result.tainted}; ${result.active ? `${result.active} is active` : 'no key is active'}\n`,
        )
      })
    })

  ca.command('revoke')
    .description(
      'emergency rotation, step 2: a tainted key leaves the bundle (what it signed stops validating)',
    )
    .argument('<id>', 'the tainted key id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const key = await caAdminOf(backend).revoke(id)
        if (g.json) return ctx.out(JSON.stringify(key) + '\n')
        return ctx.out(`revoked CA key ${key.id}: it is no longer in the bundle\n`)
      })
    })
}

const keyColumns = [
  { header: 'ID', value: (k: CaKeyJson) => k.id },
  { header: 'PURPOSE', value: (k: CaKeyJson) => k.purpose },
  { header: 'SLOT', value: (k: CaKeyJson) => k.slot },
  { header: 'NOT BEFORE', value: (k: CaKeyJson) => k.notBefore },
  { header: 'NOT AFTER', value: (k: CaKeyJson) => k.notAfter },
  {
    header: 'STATE',
    value: (k: CaKeyJson) =>
      k.revoked ? 'revoked' : k.tainted ? 'tainted' : k.published ? 'published' : 'expired',
  },
]
