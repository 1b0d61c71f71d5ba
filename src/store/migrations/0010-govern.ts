import { sql, type Kysely } from 'kysely'
import { splitStatements } from './0001-initial.js'

/**
 * Governance: explicit ownership assignments (kept as versions: a reassignment closes the previous
 * one, so "who owned it at T" stays answerable), CODEOWNERS files stored per repository for
 * ownership resolution, and a lookup of owners by their SCIM id (the id an IdP pushes back).
 */
export const up = `
CREATE TABLE owner_assignment (
  version_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  identity_id uuid NOT NULL,
  identity_ref text NOT NULL,
  owner_ref text NOT NULL,
  reason text,
  assigned_by text,
  valid_from timestamptz NOT NULL,
  valid_to timestamptz
);
CREATE UNIQUE INDEX owner_assignment_current ON owner_assignment (identity_id) WHERE valid_to IS NULL;
CREATE INDEX owner_assignment_owner ON owner_assignment (owner_ref) WHERE valid_to IS NULL;

CREATE TABLE codeowners_file (
  repository text PRIMARY KEY,
  content text NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE INDEX owner_current_scim_id ON owner ((attributes->>'scimId')) WHERE valid_to IS NULL;
`

export async function migrate(db: Kysely<unknown>): Promise<void> {
  for (const statement of splitStatements(up)) await sql.raw(statement).execute(db)
}
