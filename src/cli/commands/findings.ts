import { Option, type Command } from 'commander'
import type {
  FindingFilter,
  FindingPage,
  FindingStatus,
  FindingView,
  PostureRunResult,
  RuleInfo,
} from '../../posture/index.js'
import { TesseraError } from '../../errors.js'
import type { Clock } from '../../runtime/clock.js'
import { severities, type Store } from '../../store/index.js'
import type { CommandContext } from '../context.js'
import { exitCodes } from '../exit-codes.js'
import { collect, intOption, oneOf } from '../options.js'
import type { RemoteHttp } from '../remote.js'
import { renderTable } from '../table.js'
import { parseTimeOption } from '../time.js'

/** Posture findings, the same over a server (`--server`) or on a store opened here. */
export interface FindingsAdmin {
  list(filter: FindingFilter): Promise<FindingPage>
  run(rules?: string[]): Promise<PostureRunResult>
  accept(id: string, reason: string, until: Date): Promise<FindingView>
  rules(): Promise<RuleInfo[]>
}

export function remoteFindingsAdmin(http: RemoteHttp): FindingsAdmin {
  return {
    list: (f) =>
      http.json('GET', 'v1/findings', {
        query: {
          rule: f.rule,
          owner: f.owner,
          severity: f.severity,
          status: f.status,
          subject: f.subject,
          limit: f.limit === undefined ? undefined : String(f.limit),
          cursor: f.cursor,
        },
      }),
    run: (rules) => http.json('POST', 'v1/findings/run', { body: rules ? { rules } : {} }),
    accept: (id, reason, until) =>
      http.json('POST', `v1/findings/${encodeURIComponent(id)}/accept`, {
        body: { reason, until: until.toISOString() },
      }),
    rules: async () => (await http.json<{ items: RuleInfo[] }>('GET', 'v1/findings/rules')).items,
  }
}

export function localFindingsAdmin(store: Store, clock: Clock, user: string): FindingsAdmin {
  const posture = async () =>
    (await import('../../posture/index.js')).createPosture({ store, clock })
  return {
    list: async (f) => (await posture()).findings.list(f),
    run: async (rules) => (await posture()).run(rules ? { rules } : {}),
    accept: async (id, reason, until) =>
      (await posture()).findings.accept(id, { reason, until, by: `cli:${user}` }),
    rules: async () => (await posture()).rules(),
  }
}

interface ListOptions {
  rule?: string[]
  owner?: string
  severity?: FindingView['severity']
  status?: FindingStatus
  subject?: string
  limit?: number
  cursor?: string
}

const columns = [
  { header: 'ID', value: (f: FindingView) => f.id.slice(0, 8) },
  { header: 'SEVERITY', value: (f: FindingView) => f.severity },
  { header: 'RULE', value: (f: FindingView) => f.rule },
  {
    header: 'SUBJECT',
    value: (f: FindingView) => f.subjectRef,
    maxWidth: 60,
    truncate: 'middle' as const,
  },
  { header: 'OWNER', value: (f: FindingView) => f.owner ?? '(none)', maxWidth: 30 },
  { header: 'STATUS', value: (f: FindingView) => f.status },
  { header: 'FIRST SEEN', value: (f: FindingView) => f.firstSeenAt.slice(0, 10) },
]

/**
 * `tessera findings [--rule R] [--owner O] [--severity S] [--status S]` lists findings (exit 1
 * when any listed finding is open); `findings run` evaluates every rule; `findings accept ID`.
 */
export function registerFindingsCommands(program: Command, ctx: CommandContext): void {
  const findings = program
    .command('findings')
    .description('posture findings: list them (most severe first), run the rules, accept one')
    .option('--rule <id>', 'only this rule (with run: repeatable)', collect)
    .option('--owner <ref>', 'only findings owned by this person or team')
    .addOption(new Option('--severity <s>', 'only this severity').argParser(oneOf(severities)))
    .addOption(
      new Option('--status <s>', 'open (default), accepted, resolved').argParser(
        oneOf(['open', 'accepted', 'resolved'] as const),
      ),
    )
    .option('--subject <ref>', 'only findings about this identity or credential (id or ref)')
    .option('--limit <n>', 'page size (default 100)', intOption(1, 1000))
    .option('--cursor <c>', 'the next page (printed after a full page)')
    .action(async (opts: ListOptions, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const admin = backend.findings!
        if ((opts.rule?.length ?? 0) > 1) {
          throw new TesseraError('TSR_VALIDATION', 'list one rule at a time (--rule once)')
        }
        const page = await admin.list({
          ...opts,
          rule: opts.rule?.[0],
          status: opts.status ?? 'open',
        })
        if (page.items.some((f) => f.status === 'open')) ctx.setExitCode(exitCodes.findings)
        if (g.json) return ctx.out(JSON.stringify(page) + '\n')
        if (page.items.length === 0) return ctx.out('no findings\n')
        await ctx.out(renderTable(columns, page.items))
        if (page.nextCursor) ctx.note(`more: --cursor ${page.nextCursor}`)
      })
    })

  findings
    .command('run')
    .description('evaluate the posture rules now (all, or --rule …), then recompute risk scores')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      // `--rule` belongs to `findings` (commander hands options before and after `run` to it).
      const rules = cmd.parent?.opts<ListOptions>().rule
      await ctx.withBackend(cmd, async (backend) => {
        if (!g.json) ctx.note('evaluating posture rules…')
        const result = await backend.findings!.run(rules)
        const total = result.rules.reduce((n, r) => n + r.found, 0)
        if (total > 0) ctx.setExitCode(exitCodes.findings)
        if (g.json) return ctx.out(JSON.stringify(result) + '\n')
        await ctx.out(
          renderTable(
            [
              { header: 'RULE', value: (r: PostureRunResult['rules'][number]) => r.rule },
              { header: 'SEVERITY', value: (r) => r.severity },
              { header: 'FINDINGS', value: (r) => r.found, align: 'right' as const },
              { header: 'NEW', value: (r) => r.opened, align: 'right' as const },
              { header: 'RESOLVED', value: (r) => r.resolved, align: 'right' as const },
              {
                header: 'TIME',
                value: (r) => `${(r.ms / 1000).toFixed(2)} s`,
                align: 'right' as const,
              },
            ],
            result.rules,
          ),
        )
        await ctx.out(
          `${total} findings from ${result.rules.length} rules in ${(result.ms / 1000).toFixed(1)} s; ${result.riskScores} identities scored\n`,
        )
      })
    })

  findings
    .command('accept <id>')
    .description('accept a finding with a reason until an expiry; it reopens by itself afterwards')
    .requiredOption('--reason <text>', 'why the risk is accepted')
    .requiredOption('--until <time>', 'expiry: an instant or a duration from now (30d)')
    .action(async (id: string, opts: { reason: string; until: string }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const until = parseTimeOption(opts.until, {
        option: '--until',
        now: ctx.io.clock.now(),
        direction: 'future',
      })
      await ctx.withBackend(cmd, async (backend) => {
        const f = await backend.findings!.accept(id, opts.reason, until)
        if (g.json) return ctx.out(JSON.stringify(f) + '\n')
        return ctx.out(`accepted ${f.rule} on ${f.subjectRef} until ${f.acceptedUntil}\n`)
      })
    })

  findings
    .command('rules')
    .description('the posture rules with their severities and thresholds')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const rules = await backend.findings!.rules()
        if (g.json) return ctx.out(JSON.stringify(rules) + '\n')
        return ctx.out(
          renderTable(
            [
              { header: 'RULE', value: (r: RuleInfo) => r.id },
              { header: 'SEVERITY', value: (r) => r.severity },
              {
                header: 'THRESHOLDS',
                value: (r) =>
                  Object.entries(r.thresholds)
                    .map(([k, t]) => `${k}=${t.value}`)
                    .join(' '),
              },
              { header: 'TITLE', value: (r) => r.title, maxWidth: 60 },
            ],
            rules,
          ),
        )
      })
    })
}
