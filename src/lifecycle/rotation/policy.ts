import { TesseraError } from '../../errors.js'

/**
 * A managed secret's rotation policy: rotate every `periodSeconds`, only inside the daily UTC
 * `window` when one is set (`HH:MM-HH:MM`, may wrap midnight), and keep the old value valid for
 * `graceSeconds` after the new one is activated.
 */
export interface RotationPolicy {
  periodSeconds: number
  window?: string
  graceSeconds: number
}

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }

/** `90s`, `15m`, `12h`, `30d`, `2w`, or a plain number of seconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d{1,9})([smhdw]?)$/.exec(text.trim())
  if (!m) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `${what} must be a duration like 90s, 15m, 12h, 30d or 2w (got ${JSON.stringify(text)})`,
    )
  }
  return Number(m[1]) * units[m[2] || 's']!
}

interface Window {
  start: number
  end: number
}

/** Minutes after midnight UTC of each end; throws TSR_VALIDATION on anything else. */
export function parseWindow(text: string): Window {
  const m = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/.exec(text.trim())
  if (!m) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `the rotation window must be HH:MM-HH:MM in UTC, e.g. 02:00-04:00 (got ${JSON.stringify(text)})`,
    )
  }
  const start = Number(m[1]) * 60 + Number(m[2])
  const end = Number(m[3]) * 60 + Number(m[4])
  if (start === end) {
    throw new TesseraError('TSR_VALIDATION', 'the rotation window must not be empty')
  }
  return { start, end }
}

export function checkPolicy(policy: RotationPolicy): RotationPolicy {
  if (!Number.isInteger(policy.periodSeconds) || policy.periodSeconds < 60) {
    throw new TesseraError('TSR_VALIDATION', 'the rotation period must be at least 60 s')
  }
  if (!Number.isInteger(policy.graceSeconds) || policy.graceSeconds < 0) {
    throw new TesseraError('TSR_VALIDATION', 'the grace period must be 0 s or more')
  }
  if (policy.graceSeconds >= policy.periodSeconds) {
    throw new TesseraError(
      'TSR_VALIDATION',
      'the grace period must be shorter than the rotation period (two rotations would overlap)',
    )
  }
  if (policy.window !== undefined) parseWindow(policy.window)
  return policy
}

function inWindow(minute: number, w: Window): boolean {
  return w.start < w.end ? minute >= w.start && minute < w.end : minute >= w.start || minute < w.end
}

/** The first instant at or after `at` inside the window (`at` itself without a window). */
export function nextInWindow(at: Date, window: string | undefined): Date {
  if (window === undefined) return at
  const w = parseWindow(window)
  const minute = at.getUTCHours() * 60 + at.getUTCMinutes()
  if (inWindow(minute, w)) return at
  const day = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate())
  let opens = day + w.start * 60_000
  if (opens <= at.getTime()) opens += 86_400_000
  return new Date(opens)
}

/** When a secret rotated (or put under management) at `from` is next due. */
export function nextRotationAt(from: Date, policy: RotationPolicy): Date {
  return nextInWindow(new Date(from.getTime() + policy.periodSeconds * 1000), policy.window)
}

/** Whether a due rotation may start now (it is due and, with a window, inside it). */
export function mayRotateAt(now: Date, window: string | undefined): boolean {
  return window === undefined || nextInWindow(now, window).getTime() === now.getTime()
}
