import { isTesseraError } from '../errors.js'
import type { RunnerDeps, SourceRunStats } from './runner.js'
import { runConnector } from './runner.js'
import type { SourceConfig } from './sources.js'

export interface SchedulerLog {
  info(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): { unref?(): void }
  clearTimeout(handle: unknown): void
}

export interface DiscoveryScheduler {
  /** Runs each source with an interval once now, then every interval after its previous run ends. */
  start(): void
  /** Stops scheduling and waits for runs in flight. */
  stop(): Promise<void>
  /** Runs one source at once (unless it is already running); resolves to its stats. */
  runNow(name: string): Promise<SourceRunStats | undefined>
}

/**
 * The server's discovery schedule: one timer per source, never two runs of a source at once, the
 * next run counted from the end of the previous one (a slow source cannot pile up). A failed run
 * is logged and retried at the next interval.
 */
export function createDiscoveryScheduler(deps: {
  sources: readonly SourceConfig[]
  runner: RunnerDeps
  log: SchedulerLog
  timers?: Timers
}): DiscoveryScheduler {
  const timers: Timers = deps.timers ?? {
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  }
  const running = new Map<string, Promise<SourceRunStats | undefined>>()
  const handles = new Map<string, unknown>()
  let stopped = false
  const byName = new Map(deps.sources.map((s) => [s.name, s]))

  const runOnce = (source: SourceConfig): Promise<SourceRunStats | undefined> => {
    const inFlight = running.get(source.name)
    if (inFlight) return inFlight
    const p = runConnector(deps.runner, source.connector)
      .then((stats) => {
        const { problems, ...counts } = stats
        deps.log.info(
          { discovery: counts, ...(problems.length ? { problems } : {}) },
          'discovery run finished',
        )
        return stats
      })
      .catch((err: unknown) => {
        deps.log.error(
          { source: source.name, code: isTesseraError(err) ? err.code : 'TSR_INTERNAL', err },
          'discovery run failed',
        )
        return undefined
      })
      .finally(() => running.delete(source.name))
    running.set(source.name, p)
    return p
  }

  const schedule = (source: SourceConfig, ms: number) => {
    if (stopped) return
    const h = timers.setTimeout(() => {
      handles.delete(source.name)
      void runOnce(source).finally(() => schedule(source, source.intervalMs!))
    }, ms)
    h.unref?.()
    handles.set(source.name, h)
  }

  return {
    start() {
      for (const s of deps.sources) if (s.intervalMs !== undefined) schedule(s, 0)
    },
    async stop() {
      stopped = true
      for (const h of handles.values()) timers.clearTimeout(h)
      handles.clear()
      await Promise.all(running.values())
    },
    runNow(name) {
      const s = byName.get(name)
      return s ? runOnce(s) : Promise.resolve(undefined)
    },
  }
}
