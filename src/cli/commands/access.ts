import type { Command } from 'commander'
import type {
  GrantAtT,
  ReachResult,
  WhoCouldResult,
  WhoDidResult,
} from '../../audit/access-queries.js'
import type { IssuanceView } from '../../ca/issuance-history.js'
import { TesseraError } from '../../errors.js'
import type {
  AggregatedUsage,
  RecordUsageOptions,
  RecordUsageResult,
  UnusedGrant,
} from '../../inventory/usage/index.js'
import type { Store } from '../../store/store.js'
import type { Backend } from '../backend.js'
import type { CommandContext } from '../context.js'
import type { RemoteHttp } from '../remote.js'
import { intOption } from '../options.js'
import { renderTable } from '../table.js'
import { parseTimeOption } from '../time.js'
import { caAdminOf } from './ca.js'

/**
 * Temporal access queries and usage, the same over HTTP (`--server`) or on a store opened here.
 * `tessera access …` and `tessera usage …` see only this.
 */
export interface ObserveAdmin {
  whoCould(resource: string, at: Date): Promise<WhoCouldResult>
  whoDid(resource: string, from: Date, to: Date): Promise<WhoDidResult>
  reach(identity: string, at: Date): Promise<ReachResult>
  recordUsage(usage: AggregatedUsage, options: RecordUsageOptions): Promise<RecordUsageResult>
  unused(since: Date, includeNewerGrants: boolean): Promise<UnusedGrant[]>
}

export function localObserveAdmin(store: Store): ObserveAdmin {
  // Loaded on demand, like the rest of the local backend.
  const queries = async () =>
    (await import('../../audit/access-queries.js')).createAccessQueries({ store })
  const usage = () => import('../../inventory/usage/index.js')
  return {
    whoCould: async (r, at) => (await queries()).whoCould(r, at),
    whoDid: async (r, from, to) => (await queries()).whoDid(r, from, to),
    reach: async (x, at) => (await queries()).reach(x, at),
    recordUsage: async (u, o) => (await usage()).recordUsage({ store }, u, o),
    unused: async (since, newer) =>
      (await usage()).grantedButUnused({ db: store.db, since, onlyOlderGrants: !newer }),
  }
}

/** Rows per request when usage goes to a server (its body limit is 32 MiB). */
const usageRowsPerRequest = 20_000

export function remoteObserveAdmin(http: RemoteHttp): ObserveAdmin {
  return {
    whoCould: (resource, at) =>
      http.json('GET', 'v1/access/who-could', { query: { resource, at: at.toISOString() } }),
    whoDid: (resource, from, to) =>
      http.json('GET', 'v1/access/who-did', {
        query: { resource, from: from.toISOString(), to: to.toISOString() },
      }),
    reach: (identity, at) =>
      http.json('GET', 'v1/access/reach', { query: { identity, at: at.toISOString() } }),
    async recordUsage(usage, options) {
      const total: RecordUsageResult = {
        written: 0,
        unchanged: 0,
        identitiesTouched: 0,
        credentialsTouched: 0,
      }
      for (let i = 0; i === 0 || i < usage.rows.length; i += usageRowsPerRequest) {
        const r = await http.json<RecordUsageResult>('POST', 'v1/usage', {
          body: {
            source: options.source,
            ...(options.mode ? { mode: options.mode } : {}),
            rows: usage.rows.slice(i, i + usageRowsPerRequest),
            ...(i === 0 ? { credentials: usage.credentials, accessKeys: usage.accessKeys } : {}),
          },
        })
        total.written += r.written
        total.unchanged += r.unchanged
        total.identitiesTouched += r.identitiesTouched
        total.credentialsTouched += r.credentialsTouched
      }
      return total
    },
    async unused(since, newer) {
      const r = await http.json<{ items: UnusedGrant[] }>('GET', 'v1/usage/unused', {
        query: { since: since.toISOString(), ...(newer ? { includeNewerGrants: 'true' } : {}) },
      })
      return r.items
    },
  }
}

export function observeAdminOf(backend: Backend): ObserveAdmin {
  if (!backend.observe) {
    throw new TesseraError('TSR_CONFIG', `${backend.location} offers no access queries`)
  }
  return backend.observe
}

/**
 * `tessera access held|who-could|who-did|reach`: who held a SPIFFE ID then, who could or did
 * access a resource, and what an identity could reach, at any past instant.
 */
export function registerAccessCommands(program: Command, ctx: CommandContext): void {
  const access = program
    .command('access')
    .description(
      'who held which workload identity, who could or did access what, and what an identity could reach, at any instant',
    )

  access
    .command('held')
    .description(
      'the SVIDs of a SPIFFE ID valid at an instant: serial or jti, validity, and the agent (node)',
    )
    .argument('<spiffe-id>', 'e.g. spiffe://example.org/ns/prod/sa/api')
    .option('--at <time>', 'an instant (ISO 8601), a duration ago (2h), or now', 'now')
    .option('--agent <id>', 'only SVIDs issued through this agent')
    .option('--limit <n>', 'at most this many (newest first)', intOption(1, 1000), 100)
    .action(
      async (
        spiffeId: string,
        opts: { at: string; agent?: string; limit: number },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        const at = parseTimeOption(opts.at, {
          option: '--at',
          now: ctx.io.clock.now(),
          direction: 'past',
        })
        await ctx.withBackend(cmd, async (backend) => {
          const page = await caAdminOf(backend).issuance({
            spiffeId,
            at,
            limit: opts.limit,
            ...(opts.agent === undefined ? {} : { agentId: opts.agent }),
          })
          if (g.json) return ctx.out(JSON.stringify({ at: at.toISOString(), ...page }) + '\n')
          if (page.items.length === 0) {
            ctx.setExitCode(1)
            return ctx.out(`no SVID of ${spiffeId} was valid at ${at.toISOString()}\n`)
          }
          return ctx.out(renderTable(columns, page.items))
        })
      },
    )

  const instant = (text: string, option: string) =>
    parseTimeOption(text, { option, now: ctx.io.clock.now(), direction: 'past' })

  access
    .command('who-could')
    .description(
      'identities that could access a resource at an instant: grants valid then, identity active, a credential or SVID valid and not revoked then',
    )
    .argument('<resource>', 'a resource ref, e.g. arn:aws:s3:::reports')
    .option('--at <time>', 'an instant (ISO 8601), a duration ago (2h), or now', 'now')
    .action(async (resource: string, opts: { at: string }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const at = instant(opts.at, '--at')
      await ctx.withBackend(cmd, async (backend) => {
        const r = await observeAdminOf(backend).whoCould(resource, at)
        if (g.json) return ctx.out(JSON.stringify(r) + '\n')
        if (r.could.length === 0) ctx.setExitCode(1)
        let text =
          r.could.length === 0
            ? `no identity could access ${resource} at ${r.at}\n`
            : renderTable(grantColumns, r.could)
        if (r.blocked.length > 0) {
          text +=
            `\ngranted but unable to act at ${r.at}:\n` + renderTable(blockedColumns, r.blocked)
        }
        return ctx.out(text)
      })
    })

  access
    .command('who-did')
    .description(
      'identities that accessed a resource in [from, to): allowed decisions, and usage by hour',
    )
    .argument('<resource>', 'a resource ref')
    .requiredOption('--from <time>', 'start (inclusive): ISO 8601 or a duration ago')
    .option('--to <time>', 'end (exclusive): ISO 8601, a duration ago, or now', 'now')
    .action(async (resource: string, opts: { from: string; to: string }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const from = instant(opts.from, '--from')
      const to = instant(opts.to, '--to')
      await ctx.withBackend(cmd, async (backend) => {
        const r = await observeAdminOf(backend).whoDid(resource, from, to)
        if (g.json) return ctx.out(JSON.stringify(r) + '\n')
        if (r.identities.length === 0) {
          ctx.setExitCode(1)
          return ctx.out(`no identity accessed ${resource} between ${r.from} and ${r.to}\n`)
        }
        return ctx.out(renderTable(didColumns, r.identities))
      })
    })

  access
    .command('reach')
    .description(
      'what an identity (ref or id) could reach at an instant, and with which credentials',
    )
    .argument('<identity>', 'an identity ref (ARN, SPIFFE ID…) or id')
    .option('--at <time>', 'an instant (ISO 8601), a duration ago (2h), or now', 'now')
    .action(async (identity: string, opts: { at: string }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const at = instant(opts.at, '--at')
      await ctx.withBackend(cmd, async (backend) => {
        const r = await observeAdminOf(backend).reach(identity, at)
        if (g.json) return ctx.out(JSON.stringify(r) + '\n')
        const head =
          r.state === null
            ? `${r.identity} did not exist at ${r.at}\n`
            : `${r.identity} at ${r.at}: ${r.state}, ${
                r.usable
                  ? 'holding ' + r.credentials.map((c) => c.ref).join(', ')
                  : 'no usable credential'
              }\n`
        if (r.grants.length === 0) {
          ctx.setExitCode(1)
          return ctx.out(head + 'no grants\n')
        }
        return ctx.out(head + renderTable(reachColumns, r.grants))
      })
    })
}

const columns = [
  { header: 'TYPE', value: (r: IssuanceView) => r.svidType },
  { header: 'SERIAL / JTI', value: (r: IssuanceView) => r.serial ?? r.jti ?? '' },
  { header: 'NOT BEFORE', value: (r: IssuanceView) => r.notBefore },
  { header: 'NOT AFTER', value: (r: IssuanceView) => r.notAfter },
  {
    header: 'AGENT',
    value: (r: IssuanceView) => r.agentSpiffeId ?? r.agentId ?? '(none)',
    maxWidth: 60,
  },
]

const grantColumns = [
  {
    header: 'IDENTITY',
    value: (r: GrantAtT) => r.identityRef,
    maxWidth: 60,
    truncate: 'middle' as const,
  },
  { header: 'KIND', value: (r: GrantAtT) => r.identityKind },
  { header: 'ACTIONS', value: (r: GrantAtT) => r.actions.join(','), maxWidth: 40 },
  {
    header: 'VIA',
    value: (r: GrantAtT) => (r.policy ? `${r.policy.name} v${r.policy.version}` : r.via),
  },
  {
    header: 'CREDENTIALS',
    value: (r: GrantAtT) => r.credentials.map((c) => c.ref).join(','),
    maxWidth: 50,
  },
]

const blockedColumns = [
  {
    header: 'IDENTITY',
    value: (r: GrantAtT & { reason: string }) => r.identityRef,
    maxWidth: 60,
    truncate: 'middle' as const,
  },
  { header: 'ACTIONS', value: (r: GrantAtT) => r.actions.join(','), maxWidth: 40 },
  { header: 'WHY NOT', value: (r: GrantAtT & { reason: string }) => r.reason },
]

const didColumns = [
  {
    header: 'IDENTITY',
    value: (r: WhoDidResult['identities'][number]) => r.identityRef,
    maxWidth: 60,
    truncate: 'middle' as const,
  },
  {
    header: 'ACTIONS',
    value: (r: WhoDidResult['identities'][number]) => r.actions.join(','),
    maxWidth: 40,
  },
  {
    header: 'ALLOWED',
    value: (r: WhoDidResult['identities'][number]) => r.decisions,
    align: 'right' as const,
  },
  {
    header: 'DENIED',
    value: (r: WhoDidResult['identities'][number]) => r.denied,
    align: 'right' as const,
  },
  { header: 'FIRST', value: (r: WhoDidResult['identities'][number]) => r.firstAt },
  { header: 'LAST', value: (r: WhoDidResult['identities'][number]) => r.lastAt },
  {
    header: 'USAGE (HOURLY)',
    value: (r: WhoDidResult['identities'][number]) =>
      r.usage.reduce((n, u) => n + u.count, 0) || '',
    align: 'right' as const,
  },
]

const reachColumns = [
  {
    header: 'RESOURCE',
    value: (r: GrantAtT) => r.resourceRef,
    maxWidth: 60,
    truncate: 'middle' as const,
  },
  { header: 'ACTIONS', value: (r: GrantAtT) => r.actions.join(','), maxWidth: 40 },
  {
    header: 'VIA',
    value: (r: GrantAtT) => (r.policy ? `${r.policy.name} v${r.policy.version}` : r.via),
  },
  { header: 'SINCE', value: (r: GrantAtT) => r.grantValidFrom },
  { header: 'UNTIL', value: (r: GrantAtT) => r.grantValidTo },
]
