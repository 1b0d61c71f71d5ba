import { Option, type Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type {
  OffboardingPlan,
  OffboardingRequest,
  PlanStep,
} from '../../lifecycle/offboarding/index.js'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/index.js'
import type { CommandContext } from '../context.js'
import type { RemoteHttp } from '../remote.js'
import { renderTable } from '../table.js'

/** Offboarding, the same over a server (`--server`) or on a store opened here. */
export interface OffboardingAdmin {
  preview(request: OffboardingRequest): Promise<OffboardingPlan>
  plan(request: OffboardingRequest): Promise<OffboardingPlan>
  execute(id: string): Promise<OffboardingPlan>
}

export function remoteOffboardingAdmin(http: RemoteHttp): OffboardingAdmin {
  const body = (r: OffboardingRequest, dryRun: boolean) => ({
    subject: r.subject,
    subjectType: r.subjectType,
    ...(r.reassignTo ? { reassignTo: r.reassignTo } : {}),
    dryRun,
  })
  return {
    preview: (r) => http.json('POST', 'v1/offboarding', { body: body(r, true) }),
    plan: (r) => http.json('POST', 'v1/offboarding', { body: body(r, false) }),
    execute: (id) => http.json('POST', `v1/offboarding/${encodeURIComponent(id)}/execute`),
  }
}

/**
 * On a store opened here. Until the audit log is wired into the local backend, step events go
 * nowhere but the plan's own step records (the server passes its audit sink).
 */
export function localOffboardingAdmin(store: Store, clock: Clock, user: string): OffboardingAdmin {
  const service = async () => {
    const [{ createOffboarding, createInventoryExecutors }, { createInventory }, rev, audit] =
      await Promise.all([
        import('../../lifecycle/offboarding/index.js'),
        import('../../inventory/index.js'),
        import('../../lifecycle/revocations.js'),
        import('../../audit/event-sink.js'),
      ])
    return createOffboarding({
      store,
      clock,
      events: audit.discardEvents,
      executors: createInventoryExecutors({
        store,
        inventory: createInventory({ store, clock }),
        revocations: rev.createRevocationList({ store, clock }),
        clock,
      }),
    })
  }
  return {
    preview: async (r) => (await service()).preview(r),
    plan: async (r) => (await service()).plan(r, `cli:${user}`),
    execute: async (id) => (await service()).execute(id, `cli:${user}`),
  }
}

interface OffboardOptions {
  dryRun?: boolean
  execute?: boolean
  type: OffboardingRequest['subjectType']
  to?: string
}

const stepColumns = [
  { header: '#', value: (s: PlanStep) => s.seq, align: 'right' as const },
  { header: 'ACTION', value: (s: PlanStep) => s.action },
  {
    header: 'TARGET',
    value: (s: PlanStep) => s.targetRef,
    maxWidth: 56,
    truncate: 'middle' as const,
  },
  { header: 'STATUS', value: (s: PlanStep) => s.status },
  { header: 'REASON', value: (s: PlanStep) => s.reason, maxWidth: 70 },
]

/**
 * `tessera offboard PERSON [--dry-run | --execute]`: the plan (default, nothing changes), or its
 * execution. `--type team|service` offboards a team or decommissions a service. Running
 * `--execute` again after an interruption resumes the same plan.
 */
export function registerOffboardCommand(program: Command, ctx: CommandContext): void {
  program
    .command('offboard <subject>')
    .description(
      'plan (and with --execute carry out) the offboarding of a person, a team or a service',
    )
    .option('--dry-run', 'show the plan only (the default)')
    .option('--execute', 'store the plan and execute it (resumes an unfinished plan)')
    .addOption(
      new Option('--type <type>', 'what leaves')
        .choices(['person', 'team', 'service'])
        .default('person'),
    )
    .option('--to <owner>', 'who takes over owned identities (default: their team)')
    .action(async (subject: string, opts: OffboardOptions, cmd: Command) => {
      const g = ctx.globals(cmd)
      if (opts.dryRun && opts.execute) {
        throw new TesseraError('TSR_VALIDATION', 'give --dry-run or --execute, not both')
      }
      const request: OffboardingRequest = {
        subjectType: opts.type,
        subject,
        ...(opts.to ? { reassignTo: opts.to } : {}),
      }
      await ctx.withBackend(cmd, async (backend) => {
        const admin = backend.offboarding!
        let plan: OffboardingPlan
        if (opts.execute) {
          const stored = await admin.plan(request)
          if (!g.json) ctx.note(`executing plan ${stored.id} (${stored.steps.length} steps)…`)
          plan = await admin.execute(stored.id!)
        } else plan = await admin.preview(request)
        if (g.json) return ctx.out(JSON.stringify(plan) + '\n')
        for (const w of plan.warnings) ctx.note(`warning: ${w}`)
        await ctx.out(
          `${plan.subjectType} ${plan.subject}: ${plan.identities.length} identities ` +
            `(${plan.identities.filter((i) => i.soleOwner).length} solely owned), ` +
            `${plan.credentials.length} credentials, ${plan.steps.length} steps` +
            `${plan.id ? `, plan ${plan.id} ${plan.status}` : ' (dry run: nothing changed)'}\n`,
        )
        if (plan.steps.length > 0) await ctx.out(renderTable(stepColumns, plan.steps))
      })
    })
}
