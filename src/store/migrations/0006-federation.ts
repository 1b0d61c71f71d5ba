import { sql, type Kysely } from 'kysely'
import { splitStatements } from './0001-initial.js'

/**
 * SPIFFE federation: the trust domains this one federates with, where their bundles come from,
 * and every bundle version fetched (kept, so "which roots did we trust at T" is answerable).
 */
export const up = `
CREATE TABLE federation_relationship (
  trust_domain text PRIMARY KEY,
  bundle_endpoint_url text NOT NULL,
  profile text NOT NULL CHECK (profile IN ('https_web', 'https_spiffe')),
  endpoint_spiffe_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text,
  next_poll_at timestamptz NOT NULL DEFAULT now(),
  last_polled_at timestamptz,
  last_success_at timestamptz,
  last_error text,
  consecutive_failures integer NOT NULL DEFAULT 0,
  CHECK (profile = 'https_web' OR endpoint_spiffe_id IS NOT NULL)
);
CREATE INDEX federation_relationship_next_poll ON federation_relationship (next_poll_at);

CREATE TABLE federated_bundle (
  version_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  trust_domain text NOT NULL,
  sequence bigint NOT NULL,
  bundle jsonb NOT NULL,
  refresh_hint_seconds integer,
  source text NOT NULL CHECK (source IN ('endpoint', 'operator')),
  fetched_at timestamptz NOT NULL,
  valid_to timestamptz
);
CREATE UNIQUE INDEX federated_bundle_current ON federated_bundle (trust_domain) WHERE valid_to IS NULL;
CREATE INDEX federated_bundle_history ON federated_bundle (trust_domain, fetched_at);
`

export async function migrate(db: Kysely<unknown>): Promise<void> {
  for (const statement of splitStatements(up)) await sql.raw(statement).execute(db)
}
