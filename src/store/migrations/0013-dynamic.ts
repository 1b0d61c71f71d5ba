import { sql, type Kysely } from 'kysely'
import { splitStatements } from './0001-initial.js'

/**
 * Just-in-time dynamic credentials: one lease per credential minted for a workload in a backend
 * (a PostgreSQL role, a Redis ACL user). The row is written `pending` BEFORE the credential exists,
 * so a crash at any point leaves a row the reaper can find; it becomes `active` once the backend
 * holds the credential and `revoked` once the backend no longer does. Only a fingerprint of the
 * password is kept.
 */
export const up = `
CREATE TABLE dynamic_lease (
  id text PRIMARY KEY,
  backend text NOT NULL,
  backend_type text NOT NULL,
  template text NOT NULL,
  username text NOT NULL,
  spiffe_id text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'active', 'revoked')),
  fingerprint text,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  activated_at timestamptz,
  first_used_at timestamptz,
  last_used_at timestamptz,
  revoke_requested_at timestamptz,
  revoke_reason text,
  revoked_at timestamptz,
  revoke_attempts integer NOT NULL DEFAULT 0,
  last_error text,
  created_by text
);
CREATE UNIQUE INDEX dynamic_lease_username ON dynamic_lease (backend, username);
CREATE INDEX dynamic_lease_open ON dynamic_lease (expires_at) WHERE state <> 'revoked';
CREATE INDEX dynamic_lease_spiffe_id ON dynamic_lease (spiffe_id, state);
`

export async function migrate(db: Kysely<unknown>): Promise<void> {
  for (const statement of splitStatements(up)) await sql.raw(statement).execute(db)
}
