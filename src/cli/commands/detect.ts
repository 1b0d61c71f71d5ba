import type { Command } from 'commander'
import type { DetectionEvaluation } from '../../detection/simulate.js'
import type { CommandContext } from '../context.js'
import { intOption } from '../options.js'
import { renderTable } from '../table.js'

/** `tessera detect simulate` and `tessera detect check FILE`. */
export function registerDetectCommands(program: Command, ctx: CommandContext): void {
  const detect = program
    .command('detect')
    .description('anomaly detection: measure it on a simulated estate, check a config file')

  detect
    .command('simulate')
    .description(
      'score a simulated estate with injected attacks and print precision, recall and scoring speed',
    )
    .option('--seed <n>', 'random seed of the simulation', intOption(0, 2 ** 31 - 1), 42)
    .option('--days <n>', 'days simulated (attacks fall on days 8 to 13)', intOption(14, 90), 14)
    .action(async (opts: { seed: number; days: number }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const { simulateEstate, evaluateDetection, simulatedAttacks } =
        await import('../../detection/simulate.js')
      const stream = simulateEstate({ seed: opts.seed, days: opts.days })
      const r = evaluateDetection(stream)
      if (g.json) return ctx.out(JSON.stringify({ seed: opts.seed, days: opts.days, ...r }) + '\n')
      const pct = (x: number) => `${(x * 100).toFixed(1)}%`
      return ctx.out(
        `${r.events} events, ${r.attackEvents} of them attacks (seed ${opts.seed}, ${opts.days} days)\n` +
          `precision ${pct(r.precision)}  recall ${pct(r.recall)} (events)  incidents found ${pct(r.incidentRecall)}\n` +
          `false alerts per day ${r.falseAlertsPerDay.toFixed(2)}${
            Object.keys(r.falsePositiveCauses).length
              ? ' (' +
                Object.entries(r.falsePositiveCauses)
                  .map(([k, n]) => `${k}: ${n}`)
                  .join(', ') +
                ')'
              : ''
          }\n` +
          `scoring ${Math.round(r.eventsPerSecond).toLocaleString('en-US')} events/s in-process\n\n` +
          renderTable(
            [
              {
                header: 'ATTACK',
                value: (i: DetectionEvaluation['incidents'][number]) => i.attack,
              },
              {
                header: 'WHAT',
                value: (i: DetectionEvaluation['incidents'][number]) =>
                  simulatedAttacks[i.attack as keyof typeof simulatedAttacks],
                maxWidth: 50,
              },
              {
                header: 'ALERTED',
                value: (i: DetectionEvaluation['incidents'][number]) => `${i.alerted}/${i.events}`,
              },
              {
                header: 'FIRST EXPLANATION',
                value: (i: DetectionEvaluation['incidents'][number]) => i.example,
                maxWidth: 80,
              },
            ],
            r.incidents,
          ),
      )
    })

  detect
    .command('check')
    .description(
      'validate a detection config file (thresholds, responders, rules); every problem at once',
    )
    .argument('<file>', 'YAML or JSON (docs/detection.md)')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const { loadDetectionFile, parseResponsePolicy, responderFactories } =
        await import('../../detection/index.js')
      const parsed = loadDetectionFile(file)
      const names = Object.keys((parsed.responders ?? {}) as object)
      for (const [name, raw] of Object.entries(
        (parsed.responders ?? {}) as Record<string, unknown>,
      )) {
        const kind = (raw as { kind?: unknown } | null)?.kind ?? name
        if (typeof kind !== 'string' || !(kind in responderFactories)) {
          throw new (await import('../../errors.js')).TesseraError(
            'TSR_CONFIG',
            `${file}: responders.${name}: unknown kind ${JSON.stringify(kind)}`,
          )
        }
      }
      const policy = parseResponsePolicy(parsed.policy, names)
      if (g.json)
        return ctx.out(
          JSON.stringify({
            ok: true,
            detection: parsed.detection,
            responders: names,
            rules: policy.rules,
          }) + '\n',
        )
      return ctx.out(`${file}: ok (${names.length} responders, ${policy.rules.length} rules)\n`)
    })
}
