import { TesseraError } from '../errors.js'

/**
 * Time options on the command line take either an ISO 8601 instant (`2026-03-01`,
 * `2026-03-01T12:00:00Z`, `2026-03-01T12:00:00+02:00`) or a duration relative to now (`90d`,
 * `12h`, `1d12h`, `30m`). Whether a duration reaches into the past (`--at 7d`, `--unused-since 90d`)
 * or the future (`--expires-before 30d`) is the option's business, so the caller says which.
 */

const unitMs = {
  w: 7 * 86_400_000,
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
} as const

const durationPattern = /^(?:\d+(?:ms|w|d|h|m|s))+$/
const segmentPattern = /(\d+)(ms|w|d|h|m|s)/g

/** Parses `90d`, `12h`, `1d12h`, `30m`, `45s`, `500ms`, `2w` into milliseconds; undefined if not a duration. */
export function parseDurationMs(text: string): number | undefined {
  const value = text.trim()
  if (!durationPattern.test(value)) return undefined
  let total = 0
  for (const [, amount, unit] of value.matchAll(segmentPattern)) {
    total += Number(amount) * unitMs[unit as keyof typeof unitMs]
  }
  return Number.isSafeInteger(total) ? total : undefined
}

// Date only (midnight UTC), or date and time with a mandatory zone: a zone-less time would silently
// mean the machine's local time, which differs between an operator's laptop and a CI runner.
const instantPattern =
  /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/i

/** Parses an ISO 8601 instant; undefined when the text is not one (or names an impossible date). */
export function parseInstant(text: string): Date | undefined {
  const value = text.trim()
  if (!instantPattern.test(value)) return undefined
  const date = new Date(value.length === 10 ? `${value}T00:00:00Z` : value.replace(' ', 'T'))
  if (Number.isNaN(date.getTime())) return undefined
  // `2026-02-31` parses to 3 March; refuse dates that do not round-trip their calendar day.
  const [y, mo, d] = value.slice(0, 10).split('-').map(Number) as [number, number, number]
  if (value.length === 10) {
    if (date.getUTCFullYear() !== y || date.getUTCMonth() + 1 !== mo || date.getUTCDate() !== d) {
      return undefined
    }
  } else if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) {
    return undefined
  }
  return date
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate()
}

export interface TimeOptionContext {
  /** `past`: a duration means now minus it; `future`: now plus it. */
  direction: 'past' | 'future'
  now: Date
  /** Option name for the error message, e.g. `--at`. */
  option: string
}

/** Parses a time option value: `now`, an ISO 8601 instant, or a duration relative to now. */
export function parseTimeOption(text: string, ctx: TimeOptionContext): Date {
  const value = text.trim()
  if (value.toLowerCase() === 'now') return new Date(ctx.now.getTime())
  const instant = parseInstant(value)
  if (instant) return instant
  const ms = parseDurationMs(value)
  if (ms !== undefined) {
    return new Date(ctx.now.getTime() + (ctx.direction === 'past' ? -ms : ms))
  }
  throw new TesseraError(
    'TSR_VALIDATION',
    `${ctx.option}: ${JSON.stringify(text)} is neither an ISO 8601 instant (2026-03-01T12:00:00Z) nor a duration (90d, 12h, 30m)`,
  )
}

/** Parses a duration option (`--ttl 30d`) into whole seconds (at least one). */
export function parseDurationSeconds(text: string, option: string): number {
  const ms = parseDurationMs(text)
  if (ms === undefined || ms < 1000) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `${option}: ${JSON.stringify(text)} is not a duration of at least 1s (e.g. 30d, 12h, 90m)`,
    )
  }
  return Math.floor(ms / 1000)
}

/** A short human age like `3d ago` or `in 5h`, for tables. */
export function formatRelative(iso: string | null | undefined, now: Date): string {
  if (!iso) return '-'
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso
  const diff = t - now.getTime()
  const abs = Math.abs(diff)
  const text =
    abs < unitMs.m
      ? `${Math.floor(abs / unitMs.s)}s`
      : abs < unitMs.h
        ? `${Math.floor(abs / unitMs.m)}m`
        : abs < unitMs.d
          ? `${Math.floor(abs / unitMs.h)}h`
          : `${Math.floor(abs / unitMs.d)}d`
  return diff <= 0 ? `${text} ago` : `in ${text}`
}
