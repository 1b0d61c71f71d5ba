import { sql, type Kysely } from 'kysely'
import { splitStatements } from './0001-initial.js'

/**
 * Anomaly detection's streaming baselines, one row per identity and one per peer group, so a
 * restarted server scores with what it had learnt instead of starting a new learning period.
 * `state` is the baseline's compact JSON form (bounded counters); `events` counts what it has seen.
 */
export const up = `
CREATE TABLE detection_baseline (
  key text PRIMARY KEY,
  scope text NOT NULL CHECK (scope IN ('identity', 'peer')),
  events bigint NOT NULL DEFAULT 0,
  state jsonb NOT NULL,
  first_seen_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX detection_baseline_scope ON detection_baseline (scope, updated_at);
`

export async function migrate(db: Kysely<unknown>): Promise<void> {
  for (const statement of splitStatements(up)) await sql.raw(statement).execute(db)
}
