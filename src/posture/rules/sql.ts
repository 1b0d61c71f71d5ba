import { sql, type RawBuilder } from 'kysely'

/** Small SQL pieces the rules share. */

export const day = 86_400_000

/** An instant as a timestamptz literal parameter. */
export function at(d: Date): RawBuilder<unknown> {
  return sql`${d.toISOString()}::timestamptz`
}

/** `days` before `now`, as a timestamptz parameter. */
export function daysBefore(now: Date, days: number): RawBuilder<unknown> {
  return at(new Date(now.getTime() - days * day))
}

/** Whole days from `col` to `now` (positive when `col` is in the past). */
export function daysSince(col: RawBuilder<unknown>, now: Date): RawBuilder<unknown> {
  return sql`floor(extract(epoch from (${at(now)} - ${col})) / 86400)::int`
}

/** `col` equals one of `values` (passed as one JSON parameter, so any number of values fits). */
export function inList(col: RawBuilder<unknown>, values: readonly string[]): RawBuilder<unknown> {
  return sql`${col} in (select jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`
}
