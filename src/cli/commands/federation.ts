import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { TesseraError } from '../../errors.js'
import {
  bundleEndpointProfiles,
  type BundleEndpointProfile,
  type FederationView,
} from '../../federation/federation.js'
import type { CommandContext } from '../context.js'
import { oneOf } from '../options.js'
import { renderTable } from '../table.js'
import { formatRelative } from '../time.js'

/** `tessera federation add|list|show|refresh|remove`: the trust domains this one federates with. */
export function registerFederationCommands(program: Command, ctx: CommandContext): void {
  const federation = program
    .command('federation')
    .description('trust domains this one federates with (their bundles reach workloads)')

  federation
    .command('add')
    .description('federate with a trust domain, fetching its bundle from its bundle endpoint')
    .requiredOption('--trust-domain <td>', 'the foreign trust domain, e.g. partner.example')
    .requiredOption('--bundle-endpoint <url>', 'its bundle endpoint (https)')
    .requiredOption(
      '--profile <profile>',
      `${bundleEndpointProfiles.join(' or ')}`,
      oneOf(bundleEndpointProfiles),
    )
    .option('--endpoint-spiffe-id <id>', 'https_spiffe: the SPIFFE ID the endpoint presents')
    .option('--trust-bundle <file>', "the foreign domain's SPIFFE bundle (JSON), to start trust")
    .action(
      async (
        opts: {
          trustDomain: string
          bundleEndpoint: string
          profile: BundleEndpointProfile
          endpointSpiffeId?: string
          trustBundle?: string
        },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        let trustBundle: string | undefined
        if (opts.trustBundle !== undefined) {
          try {
            trustBundle = readFileSync(opts.trustBundle, 'utf8')
          } catch (err) {
            throw new TesseraError(
              'TSR_VALIDATION',
              `--trust-bundle: cannot read ${opts.trustBundle} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
            )
          }
        }
        await ctx.withBackend(cmd, async (backend) => {
          const view = await backend.federation.add({
            trustDomain: opts.trustDomain,
            bundleEndpointUrl: opts.bundleEndpoint,
            profile: opts.profile,
            ...(opts.endpointSpiffeId ? { endpointSpiffeId: opts.endpointSpiffeId } : {}),
            ...(trustBundle !== undefined ? { trustBundle } : {}),
          })
          if (g.json) return ctx.out(JSON.stringify(view) + '\n')
          return ctx.out(
            `federating with ${view.trustDomain} (${view.profile}, ${view.bundleEndpointUrl}); ` +
              `first fetch due now${view.bundleSequence === null ? '' : `, holding bundle sequence ${view.bundleSequence}`}\n`,
          )
        })
      },
    )

  federation
    .command('list')
    .description('relationships with their last fetch and current bundle')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const items = await backend.federation.list()
        if (g.json) return ctx.out(JSON.stringify({ items }) + '\n')
        if (items.length === 0) return ctx.out('no federation relationships\n')
        const now = ctx.io.clock.now()
        return ctx.out(
          renderTable(
            [
              { header: 'TRUST DOMAIN', value: (v: FederationView) => v.trustDomain },
              { header: 'PROFILE', value: (v: FederationView) => v.profile },
              {
                header: 'ENDPOINT',
                value: (v: FederationView) => v.bundleEndpointUrl,
                maxWidth: 50,
              },
              { header: 'SEQUENCE', value: (v: FederationView) => String(v.bundleSequence ?? '-') },
              {
                header: 'LAST OK',
                value: (v: FederationView) => formatRelative(v.lastSuccessAt, now),
              },
              { header: 'NEXT', value: (v: FederationView) => formatRelative(v.nextPollAt, now) },
              { header: 'ERROR', value: (v: FederationView) => v.lastError ?? '', maxWidth: 50 },
            ],
            items,
          ),
        )
      })
    })

  federation
    .command('show')
    .description('one relationship')
    .argument('<trust-domain>')
    .action(async (trustDomain: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const view = await backend.federation.get(trustDomain)
        if (!view) throw new TesseraError('TSR_NOT_FOUND', `no federation with ${trustDomain}`)
        if (g.json) return ctx.out(JSON.stringify(view) + '\n')
        return ctx.out(
          Object.entries(view)
            .map(([k, v]) => `${k.padEnd(20)} ${v ?? '-'}`)
            .join('\n') + '\n',
        )
      })
    })

  federation
    .command('refresh')
    .description('fetch the bundle now')
    .argument('<trust-domain>')
    .action(async (trustDomain: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const outcome = await backend.federation.refresh(trustDomain)
        if (outcome.outcome === 'failed') ctx.setExitCode(3)
        if (g.json) return ctx.out(JSON.stringify(outcome) + '\n')
        return ctx.out(
          outcome.outcome === 'failed'
            ? `fetching ${trustDomain}'s bundle failed: ${outcome.error}\n`
            : `${trustDomain}: bundle ${outcome.outcome} (sequence ${outcome.sequence})\n`,
        )
      })
    })

  federation
    .command('remove')
    .description('stop federating (bundle history is kept)')
    .argument('<trust-domain>')
    .action(async (trustDomain: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        await backend.federation.remove(trustDomain)
        return ctx.out(
          g.json
            ? JSON.stringify({ trustDomain, removed: true }) + '\n'
            : `no longer federating with ${trustDomain}\n`,
        )
      })
    })
}
