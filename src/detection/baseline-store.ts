import { sql } from 'kysely'
import type { Store } from '../store/store.js'
import { baselineFromJson, baselineToJson, type Baseline } from './baseline.js'

export type BaselineScope = 'identity' | 'peer'

/** Where baselines live between restarts (the `detection_baseline` table, migration 0009). */
export interface BaselineRepo {
  loadAll(): Promise<{ key: string; scope: BaselineScope; baseline: Baseline }[]>
  save(items: readonly { key: string; scope: BaselineScope; baseline: Baseline }[]): Promise<void>
}

export function createBaselineRepo(deps: { store: Pick<Store, 'db'> }): BaselineRepo {
  const db = deps.store.db
  return {
    async loadAll() {
      const rows = await db
        .selectFrom('detection_baseline')
        .select(['key', 'scope', 'state'])
        .execute()
      const out: { key: string; scope: BaselineScope; baseline: Baseline }[] = []
      for (const r of rows) {
        const state = typeof r.state === 'string' ? (JSON.parse(r.state) as unknown) : r.state
        const baseline = baselineFromJson(state)
        if (baseline) out.push({ key: r.key, scope: r.scope, baseline })
      }
      return out
    },
    async save(items) {
      for (let i = 0; i < items.length; i += 500) {
        const part = items.slice(i, i + 500)
        await sql`
          insert into detection_baseline as b (key, scope, events, state, first_seen_at, updated_at)
          select * from unnest(${part.map((x) => x.key)}::text[], ${part.map((x) => x.scope)}::text[],
            ${part.map((x) => x.baseline.events)}::bigint[],
            ${part.map((x) => JSON.stringify(baselineToJson(x.baseline)))}::jsonb[],
            ${part.map((x) => new Date(x.baseline.firstSeen).toISOString())}::timestamptz[],
            ${part.map((x) => new Date(x.baseline.lastSeen).toISOString())}::timestamptz[])
          on conflict (key) do update set events = excluded.events, state = excluded.state,
            updated_at = excluded.updated_at
        `.execute(db)
      }
    },
  }
}
