import { sql } from 'kysely'
import { TesseraError } from '../../errors.js'
import type { Store } from '../../store/store.js'
import { entityId } from '../ids.js'
import { lockInventory } from '../ingest.js'
import type { UsageRecord } from './usage-record.js'

/** Usage per identity, resource, action and hour: the unit the `usage` table stores. */
export interface UsageAggregate {
  identity: string
  resource: string
  action: string
  /** Start of the hour (ISO 8601). */
  hour: string
  count: number
  /** The latest access within the hour. */
  lastAt: string
}

export interface AggregatedUsage {
  rows: UsageAggregate[]
  /** Latest use per credential ref. */
  credentials: Record<string, string>
  /** Latest use per AWS access key id. */
  accessKeys: Record<string, string>
}

const hourMs = 3_600_000

/** Sums records per (identity, resource, action, hour) and keeps each credential's latest use. */
export function aggregateUsage(records: readonly UsageRecord[]): AggregatedUsage {
  const rows = new Map<string, UsageAggregate>()
  const credentials: Record<string, string> = {}
  const accessKeys: Record<string, string> = {}
  const later = (map: Record<string, string>, key: string, at: string) => {
    if (!Object.hasOwn(map, key) || map[key]! < at) map[key] = at
  }
  for (const r of records) {
    const t = r.at.getTime()
    const hour = new Date(t - (((t % hourMs) + hourMs) % hourMs)).toISOString()
    const at = r.at.toISOString()
    const key = JSON.stringify([r.identity, r.resource, r.action, hour])
    const row = rows.get(key)
    if (row) {
      row.count += r.count ?? 1
      if (row.lastAt < at) row.lastAt = at
    } else {
      rows.set(key, {
        identity: r.identity,
        resource: r.resource,
        action: r.action,
        hour,
        count: r.count ?? 1,
        lastAt: at,
      })
    }
    if (r.credential !== undefined) later(credentials, r.credential, at)
    if (r.accessKeyId !== undefined) later(accessKeys, r.accessKeyId, at)
  }
  return { rows: [...rows.values()], credentials, accessKeys }
}

export interface RecordUsageResult {
  /** Usage rows written (inserted or with a changed count). */
  written: number
  unchanged: number
  identitiesTouched: number
  credentialsTouched: number
}

export interface RecordUsageOptions {
  /**
   * The usage source, e.g. `cloudtrail:2026-11-23.json`. A row for the same identity, resource,
   * action, hour and source replaces the count (so re-importing a file changes nothing), while
   * rows of other sources add up. With `mode: 'add'` the count is added instead (decision streams).
   */
  source: string
  mode?: 'replace' | 'add'
}

const chunk = 5000

/**
 * Writes aggregated usage and raises `last_used_at` (a running maximum on the open version, never
 * a new version) on the identities and credentials it names. Identities need not exist yet: usage
 * keys on the id derived from the ref, and the inventory picks the latest use up when the identity
 * arrives.
 */
export async function recordUsage(
  deps: { store: Pick<Store, 'transaction'> },
  usage: AggregatedUsage,
  options: RecordUsageOptions,
): Promise<RecordUsageResult> {
  const source = options.source
  if (typeof source !== 'string' || source.length === 0 || source.length > 256) {
    throw new TesseraError('TSR_VALIDATION', 'usage source must be 1 to 256 characters')
  }
  const add = options.mode === 'add'
  const result: RecordUsageResult = {
    written: 0,
    unchanged: 0,
    identitiesTouched: 0,
    credentialsTouched: 0,
  }
  for (let i = 0; i < usage.rows.length || (i === 0 && hasCredentials(usage)); i += chunk) {
    const rows = usage.rows.slice(i, i + chunk)
    await deps.store.transaction(async ({ db }) => {
      // The inventory's write locks: last_used_at must not race a version being closed.
      await lockInventory(db)
      if (rows.length > 0) {
        const written = await sql<{ id: string }>`
          insert into usage as u (identity_id, identity_ref, resource_ref, action, hour, count, source)
          select * from unnest(
            ${rows.map((r) => entityId('identity', r.identity))}::uuid[],
            ${rows.map((r) => r.identity)}::text[],
            ${rows.map((r) => r.resource)}::text[],
            ${rows.map((r) => r.action)}::text[],
            ${rows.map((r) => r.hour)}::timestamptz[],
            ${rows.map((r) => r.count)}::int[],
            ${rows.map(() => source)}::text[])
          on conflict (identity_id, resource_ref, action, hour, source) do update
            set count = ${add ? sql`u.count + excluded.count` : sql`excluded.count`}, recorded_at = now()
            where ${add ? sql`true` : sql`u.count <> excluded.count`}
          returning u.id
        `.execute(db)
        result.written += written.rows.length
        result.unchanged += rows.length - written.rows.length
        const latest = new Map<string, string>()
        for (const r of rows) {
          const prev = latest.get(r.identity)
          if (prev === undefined || prev < r.lastAt) latest.set(r.identity, r.lastAt)
        }
        const touched = await sql`
          update identity as t set last_used_at = v.at
          from unnest(${[...latest.keys()].map((ref) => entityId('identity', ref))}::uuid[],
            ${[...latest.values()]}::timestamptz[]) as v(id, at)
          where t.id = v.id and t.valid_to is null
            and (t.last_used_at is null or t.last_used_at < v.at)
        `.execute(db)
        result.identitiesTouched += Number(touched.numAffectedRows ?? 0)
      }
      if (i === 0) result.credentialsTouched += await touchCredentials(db, usage)
    })
  }
  return result
}

function hasCredentials(usage: AggregatedUsage): boolean {
  return Object.keys(usage.credentials).length > 0 || Object.keys(usage.accessKeys).length > 0
}

async function touchCredentials(
  db: Parameters<Parameters<Store['transaction']>[0]>[0]['db'],
  usage: AggregatedUsage,
): Promise<number> {
  let n = 0
  const refs = Object.keys(usage.credentials)
  if (refs.length > 0) {
    const r = await sql`
      update credential as t set last_used_at = v.at
      from unnest(${refs.map((ref) => entityId('credential', ref))}::uuid[],
        ${refs.map((ref) => usage.credentials[ref]!)}::timestamptz[]) as v(id, at)
      where t.id = v.id and t.valid_to is null and (t.last_used_at is null or t.last_used_at < v.at)
    `.execute(db)
    n += Number(r.numAffectedRows ?? 0)
  }
  const keys = Object.keys(usage.accessKeys)
  if (keys.length > 0) {
    // Connectors that know an AWS key's id record it as attributes.accessKeyId.
    const r = await sql`
      update credential as t set last_used_at = v.at
      from unnest(${keys}::text[], ${keys.map((k) => usage.accessKeys[k]!)}::timestamptz[]) as v(key_id, at)
      where t.valid_to is null and t.attributes->>'accessKeyId' = v.key_id
        and (t.last_used_at is null or t.last_used_at < v.at)
    `.execute(db)
    n += Number(r.numAffectedRows ?? 0)
  }
  return n
}
