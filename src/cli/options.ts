import { InvalidArgumentError } from 'commander'
import { parseDurationMs, parseInstant } from './time.js'

/**
 * Commander argument parsers. They throw commander's InvalidArgumentError, so a bad value is a
 * usage error (exit 2) reported with the option's name, before any store or server is touched.
 */

export function intOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value)
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`)
    }
    return n
  }
}

export function oneOf<T extends string>(allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(allowed as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`must be one of ${allowed.join(', ')}`)
    }
    return value as T
  }
}

/** Repeatable and comma-separated: `--scope read --scope write` or `--scope read,write`. */
export function listOf<T extends string>(
  allowed: readonly T[],
): (value: string, previous: T[] | undefined) => T[] {
  const one = oneOf(allowed)
  return (value, previous) => [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean)
      .map(one),
  ]
}

/** Repeatable free-text option. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ]
}

/**
 * Checks the shape of a time option (instant or duration) at parse time and keeps the text; the
 * command resolves it against its clock with `parseTimeOption`.
 */
export function timeText(value: string): string {
  const v = value.trim()
  if (v.toLowerCase() === 'now' || parseInstant(v) || parseDurationMs(v) !== undefined) return v
  throw new InvalidArgumentError(
    'must be an ISO 8601 instant (2026-03-01 or 2026-03-01T12:00:00Z) or a duration (90d, 12h, 30m)',
  )
}
