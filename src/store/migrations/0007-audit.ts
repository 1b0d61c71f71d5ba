import { sql, type Kysely } from 'kysely'
import { splitStatements } from './0001-initial.js'

/**
 * The audit log's chain head: one row holding the last event's seq and hash. Every batch of events
 * locks it (SELECT … FOR UPDATE) inside its own transaction, so writers on any number of replicas
 * append to ONE chain, one batch at a time, and the row always names the true end of the chain (a
 * truncated tail is therefore detectable). Daily partitions of `event` are created by the log at run
 * time (src/audit/partitions.ts); `event_default` keeps catching anything outside them.
 */
export const up = `
CREATE TABLE event_chain_head (
  id smallint PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL,
  hash text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO event_chain_head (id, seq, hash)
  SELECT 1, coalesce(max(seq), 0),
    coalesce((SELECT hash FROM event ORDER BY seq DESC LIMIT 1), repeat('0', 64))
  FROM event;
`

export async function migrate(db: Kysely<unknown>): Promise<void> {
  for (const statement of splitStatements(up)) await sql.raw(statement).execute(db)
}
