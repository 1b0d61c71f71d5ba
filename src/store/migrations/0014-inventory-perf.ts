import { sql, type Kysely } from 'kysely'
import { splitStatements } from './0001-initial.js'

/**
 * Inventory list performance (issue 2, DESIGN.md §7).
 *
 * `identity.next_expires_at` is the earliest `expires_at` among the identity's current credentials,
 * kept on the open identity version in place (like `last_used_at`, outside the content hash, never a
 * new version). Ingest and run closing maintain it; only "now" queries read it, as-of queries still
 * ask the credential table.
 *
 * `identity_current_name` holds the current identities in name order with that expiry beside the
 * name, so a list filtered by expiry or by a name substring walks the index alone (an index-only scan
 * once vacuum has marked the pages all-visible) instead of a wide heap row per identity.
 * `identity_current_next_expiry` finds the identities expiring before an instant when they are few.
 */
export const up = `
ALTER TABLE identity ADD COLUMN next_expires_at timestamptz;
UPDATE identity i SET next_expires_at = c.next_expires_at
  FROM (SELECT identity_id, min(expires_at) AS next_expires_at FROM credential
        WHERE valid_to IS NULL AND identity_id IS NOT NULL GROUP BY identity_id) c
  WHERE i.id = c.identity_id AND i.valid_to IS NULL AND c.next_expires_at IS NOT NULL;
CREATE INDEX identity_current_name ON identity (name, id) INCLUDE (next_expires_at)
  WHERE valid_to IS NULL;
CREATE INDEX identity_current_next_expiry ON identity (next_expires_at)
  WHERE valid_to IS NULL AND next_expires_at IS NOT NULL;
`

export async function migrate(db: Kysely<unknown>): Promise<void> {
  for (const statement of splitStatements(up)) await sql.raw(statement).execute(db)
}
