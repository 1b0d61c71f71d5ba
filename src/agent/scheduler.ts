import type { Clock } from '../runtime/clock.js'

/** Runs a function at a wall-clock instant; the agent's only source of timers (tests drive it). */
export interface Scheduler {
  /** Returns a cancel function. A past instant runs on the next tick. */
  at(when: Date, fn: () => void): () => void
}

/** Longest single setTimeout Node accepts; longer waits re-arm. */
const maxDelay = 2 ** 31 - 1

export function createTimerScheduler(clock: Clock): Scheduler {
  return {
    at(when, fn) {
      let timer: NodeJS.Timeout | undefined
      let cancelled = false
      const arm = (): void => {
        const delay = when.getTime() - clock.now().getTime()
        if (delay > maxDelay) {
          timer = setTimeout(arm, maxDelay)
        } else {
          timer = setTimeout(
            () => {
              if (!cancelled) fn()
            },
            Math.max(0, delay),
          )
        }
        timer.unref()
      }
      arm()
      return () => {
        cancelled = true
        if (timer !== undefined) clearTimeout(timer)
      }
    },
  }
}

/** A scheduler over a manual clock: `advance` moves the clock and runs what became due, in order. */
export function createManualScheduler(clock: Clock & { set(d: Date): void }): Scheduler & {
  advance(ms: number): void
  pending(): number
} {
  let seq = 0
  const tasks = new Map<number, { when: number; fn: () => void }>()
  return {
    at(when, fn) {
      const id = seq++
      tasks.set(id, { when: when.getTime(), fn })
      return () => {
        tasks.delete(id)
      }
    },
    advance(ms) {
      const target = clock.now().getTime() + ms
      for (;;) {
        let next: [number, { when: number; fn: () => void }] | undefined
        for (const t of tasks)
          if (t[1].when <= target && (next === undefined || t[1].when < next[1].when)) next = t
        if (next === undefined) break
        tasks.delete(next[0])
        if (next[1].when > clock.now().getTime()) clock.set(new Date(next[1].when))
        next[1].fn()
      }
      clock.set(new Date(target))
    },
    pending: () => tasks.size,
  }
}
