/**
 * A streaming behavioural baseline: how often an identity (or a peer group) has done each action,
 * touched each resource and action-resource pair, come from each node, address and network, in
 * each hour of the week, and how many events it makes in an active minute. Everything is a bounded
 * counter, updated in O(1) per event, and serialisable to JSON for the `detection_baseline` table.
 */

export const dimensions = [
  'action',
  'resource',
  'pair',
  'node',
  'address',
  'net16',
  'net24',
] as const
export type Dimension = (typeof dimensions)[number]

/** Per dimension, the most distinct values a baseline keeps; past it the dimension is "saturated". */
export const maxValuesPerDimension = 1024

export interface Baseline {
  events: number
  firstSeen: number
  lastSeen: number
  counts: Record<Dimension, Map<string, number>>
  /** A dimension with more distinct values than the cap says nothing about novelty any more. */
  saturated: Set<Dimension>
  /** 168 bins: hour of week (UTC), Monday 00:00 = 0. */
  hours: Float64Array
  hourTotal: number
  /** The hour (since the epoch) being counted now, and its weight so far: rarity is judged on
   *  the history before it, so a burst in a rare hour does not make that hour look usual. */
  epochHour: number
  epochHourWeight: number
  /** Events with something never seen before, in `epochHour` (spread of novelty: exfiltration). */
  noveltyCount: number
  /** Rate: the current minute and its count, and the running mean and variance of active minutes. */
  minute: number
  minuteCount: number
  rateMean: number
  rateVar: number
  activeMinutes: number
}

export function createBaseline(at: number): Baseline {
  const counts = {} as Record<Dimension, Map<string, number>>
  for (const d of dimensions) counts[d] = new Map()
  return {
    events: 0,
    firstSeen: at,
    lastSeen: at,
    counts,
    saturated: new Set(),
    hours: new Float64Array(168),
    hourTotal: 0,
    epochHour: Math.floor(at / 3_600_000),
    epochHourWeight: 0,
    noveltyCount: 0,
    minute: Math.floor(at / 60_000),
    minuteCount: 0,
    rateMean: 0,
    rateVar: 0,
    activeMinutes: 0,
  }
}

/** Hour of the week in UTC, Monday 00:00 = 0 (the epoch began on a Thursday, hour 72). */
export function hourOfWeek(at: number): number {
  return (((Math.floor(at / 3_600_000) + 72) % 168) + 168) % 168
}

/** The values of one event along each dimension (absent dimensions are undefined). */
export type Features = Partial<Record<Dimension, string>>

/** The weight of a minute in the rate's running mean (an exponentially weighted average). */
const rateAlpha = 0.05

/** Closes the current minute if `at` is in a later one, folding its count into the rate. */
export function rollMinute(b: Baseline, at: number): void {
  const m = Math.floor(at / 60_000)
  if (m <= b.minute) return
  if (b.minuteCount > 0) {
    const x = b.minuteCount
    if (b.activeMinutes === 0) {
      b.rateMean = x
      b.rateVar = 0
    } else {
      const diff = x - b.rateMean
      b.rateMean += rateAlpha * diff
      b.rateVar = (1 - rateAlpha) * (b.rateVar + rateAlpha * diff * diff)
    }
    b.activeMinutes++
  }
  b.minute = m
  b.minuteCount = 0
}

/** Starts counting a new hour when `at` is in a later one. */
export function rollHour(b: Baseline, at: number): void {
  const h = Math.floor(at / 3_600_000)
  if (h <= b.epochHour) return
  b.epochHour = h
  b.epochHourWeight = 0
  b.noveltyCount = 0
}

/** Learns one event; `weight` < 1 for events that were flagged, so an attack is not learnt at once. */
export function learn(b: Baseline, at: number, f: Features, weight = 1): void {
  rollMinute(b, at)
  b.minuteCount++
  b.events++
  if (at > b.lastSeen) b.lastSeen = at
  if (at < b.firstSeen) b.firstSeen = at
  rollHour(b, at)
  b.hours[hourOfWeek(at)]! += weight
  b.hourTotal += weight
  b.epochHourWeight += weight
  for (const d of dimensions) {
    const v = f[d]
    if (v === undefined) continue
    const m = b.counts[d]
    const c = m.get(v)
    if (c !== undefined) m.set(v, c + weight)
    else if (m.size < maxValuesPerDimension) m.set(v, weight)
    else b.saturated.add(d)
  }
}

export function countOf(b: Baseline | undefined, d: Dimension, v: string | undefined): number {
  if (b === undefined || v === undefined) return 0
  return b.counts[d].get(v) ?? 0
}

const twoWeeks = 14 * 86_400_000

/**
 * Share of past activity in this hour, smoothed over the neighbouring hours. With two weeks of
 * history the hour of the week is compared (weekends differ from weekdays); before that the hour
 * of the day, so a Thursday is not strange just because the baseline began on a Monday.
 */
export function hourShare(b: Baseline, at: number): number {
  const h = hourOfWeek(at)
  // The hour in progress is not history yet.
  const current = Math.floor(at / 3_600_000) === b.epochHour ? b.epochHourWeight : 0
  const total = b.hourTotal - current
  if (total <= 0) return 1
  const bins = b.hours
  if (b.lastSeen - b.firstSeen >= twoWeeks) {
    const near = bins[h]! - current + 0.5 * (bins[(h + 167) % 168]! + bins[(h + 1) % 168]!)
    return near / total
  }
  const hod = h % 24
  let near = -current
  for (let d = 0; d < 168; d += 24) {
    near += bins[d + hod]! + 0.5 * (bins[d + ((hod + 23) % 24)]! + bins[d + ((hod + 1) % 24)]!)
  }
  return near / total
}

export interface BaselineJson {
  v: 1
  events: number
  firstSeen: number
  lastSeen: number
  counts: Record<string, [string, number][]>
  saturated: string[]
  hours: number[]
  minute: number
  minuteCount: number
  rateMean: number
  rateVar: number
  activeMinutes: number
  epochHour?: number
  epochHourWeight?: number
  noveltyCount?: number
}

export function baselineToJson(b: Baseline): BaselineJson {
  const counts: Record<string, [string, number][]> = {}
  // jsonb cannot hold U+0000, and event fields are untrusted text.
  for (const d of dimensions) {
    counts[d] = [...b.counts[d].entries()].map(([k, n]) => [k.replaceAll('\u0000', '\ufffd'), n])
  }
  return {
    v: 1,
    events: b.events,
    firstSeen: b.firstSeen,
    lastSeen: b.lastSeen,
    counts,
    saturated: [...b.saturated],
    hours: [...b.hours],
    minute: b.minute,
    minuteCount: b.minuteCount,
    rateMean: b.rateMean,
    rateVar: b.rateVar,
    activeMinutes: b.activeMinutes,
    epochHour: b.epochHour,
    epochHourWeight: b.epochHourWeight,
    noveltyCount: b.noveltyCount,
  }
}

/** Reads a stored baseline; anything malformed gives undefined (the baseline is relearnt). */
export function baselineFromJson(value: unknown): Baseline | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const j = value as Partial<BaselineJson>
  if (j.v !== 1 || typeof j.events !== 'number' || typeof j.firstSeen !== 'number') return undefined
  if (!Array.isArray(j.hours) || j.hours.length !== 168) return undefined
  const b = createBaseline(j.firstSeen)
  b.events = j.events
  b.lastSeen = typeof j.lastSeen === 'number' ? j.lastSeen : j.firstSeen
  for (const d of dimensions) {
    const list = j.counts?.[d]
    if (!Array.isArray(list)) continue
    for (const e of list.slice(0, maxValuesPerDimension)) {
      if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number') {
        b.counts[d].set(e[0], e[1])
      }
    }
  }
  for (const s of j.saturated ?? []) {
    if ((dimensions as readonly string[]).includes(s)) b.saturated.add(s as Dimension)
  }
  j.hours.forEach((x, i) => {
    b.hours[i] = typeof x === 'number' && Number.isFinite(x) ? x : 0
    b.hourTotal += b.hours[i]!
  })
  b.minute = typeof j.minute === 'number' ? j.minute : b.minute
  b.minuteCount = typeof j.minuteCount === 'number' ? j.minuteCount : 0
  b.rateMean = typeof j.rateMean === 'number' ? j.rateMean : 0
  b.rateVar = typeof j.rateVar === 'number' ? j.rateVar : 0
  b.activeMinutes = typeof j.activeMinutes === 'number' ? j.activeMinutes : 0
  b.epochHour = typeof j.epochHour === 'number' ? j.epochHour : Math.floor(b.lastSeen / 3_600_000)
  b.epochHourWeight = typeof j.epochHourWeight === 'number' ? j.epochHourWeight : 0
  b.noveltyCount = typeof j.noveltyCount === 'number' ? j.noveltyCount : 0
  return b
}
