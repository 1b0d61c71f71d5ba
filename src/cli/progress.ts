import cliProgress from 'cli-progress'

/**
 * A progress bar that only appears when the work is still running after `delayMs` (2 s by
 * default), on an interactive stderr, and never in --json mode: quick commands stay quiet and
 * piped output stays clean. Long-running commands (import, later scans) share this helper.
 */
export interface DelayedProgress {
  /** Records progress; draws once the delay has passed. `payload` fills the format's tokens. */
  update(value: number, payload?: Record<string, string | number>): void
  setTotal(total: number): void
  /** Removes the bar (if it was drawn); safe to call more than once. */
  stop(): void
  /** Whether the bar is on screen, for tests and for callers that interleave output. */
  readonly visible: boolean
}

/** The slice of a cli-progress bar this helper uses, so tests can pass a fake. */
export interface BarLike {
  start(total: number, value: number, payload?: object): void
  update(value: number, payload?: object): void
  setTotal(total: number): void
  stop(): void
}

export interface DelayedProgressOptions {
  /** False when stderr is not a TTY or --json is set; then nothing is ever drawn. */
  enabled: boolean
  total: number
  delayMs?: number
  /** cli-progress format string, e.g. `{bar} {percentage}% | ETA {eta_formatted}`. */
  format?: string
  stream?: NodeJS.WriteStream
  /** Monotonic milliseconds; injected by tests. */
  now?: () => number
  /** Makes the bar; injected by tests. */
  createBar?: () => BarLike
  /** Arms the timer that draws the bar when no update arrives after the delay; injected by tests. */
  schedule?: (fn: () => void, ms: number) => { cancel(): void }
}

export function createDelayedProgress(options: DelayedProgressOptions): DelayedProgress {
  const delayMs = options.delayMs ?? 2000
  const now = options.now ?? (() => performance.now())
  const started = now()
  let total = options.total
  let value = 0
  let payload: Record<string, string | number> = {}
  let bar: BarLike | undefined
  let stopped = !options.enabled
  const createBar =
    options.createBar ??
    (() =>
      new cliProgress.SingleBar(
        {
          stream: options.stream ?? process.stderr,
          format: options.format ?? '{bar} {percentage}% | ETA {eta_formatted}',
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      ))

  const maybeShow = () => {
    if (stopped || bar || now() - started < delayMs) return
    bar = createBar()
    bar.start(total, value, payload)
  }
  const schedule =
    options.schedule ??
    ((fn: () => void, ms: number) => {
      const timer = setTimeout(fn, ms)
      timer.unref()
      return { cancel: () => clearTimeout(timer) }
    })
  const timer = stopped ? undefined : schedule(maybeShow, delayMs)

  return {
    update(v, p) {
      value = v
      if (p) payload = { ...payload, ...p }
      if (bar) bar.update(value, payload)
      else maybeShow()
    },
    setTotal(t) {
      total = t
      bar?.setTotal(t)
    },
    stop() {
      if (stopped) return
      stopped = true
      timer?.cancel()
      bar?.stop()
    },
    get visible() {
      return bar !== undefined && !stopped
    },
  }
}

/** `1.5 MiB` style byte counts for progress lines and summaries. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`
}

/** `12,345` style counts. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}
