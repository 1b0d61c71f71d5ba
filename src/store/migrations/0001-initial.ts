import { sql, type Kysely } from 'kysely'

/**
 * The whole identity graph of DESIGN.md §2 in one migration. Fact tables (identity, credential,
 * credential_location, owner, resource, grant, edge) are versioned: a row is one version of an entity,
 * `id` is the entity's stable id, and the open version has `valid_to IS NULL`. Nothing is deleted
 * in place; a change or a disappearance closes the open version. Fact tables leave 10% of each page
 * free, so "seen again" and last-used updates (of unindexed columns) stay on the page (HOT updates).
 */
const factColumns = `
  version_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id uuid NOT NULL,
  ref text NOT NULL,
  source text NOT NULL,
  valid_from timestamptz NOT NULL,
  valid_to timestamptz,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL,
  run_id text,
  content_hash text NOT NULL,
  attributes jsonb NOT NULL DEFAULT '{}'::jsonb`

/**
 * Every fact table's indexes: the open version by id (unique, which also serialises inserts), the
 * history by id, and the open versions of a source (run closing). Ids are derived from refs, so a
 * lookup by ref computes the id and needs no index of its own.
 */
function factIndexes(table: string, bySource = true): string {
  const q = `"${table}"`
  return `
  CREATE UNIQUE INDEX ${table}_current_id ON ${q} (id) WHERE valid_to IS NULL;
  CREATE INDEX ${table}_id_history ON ${q} (id, valid_from);${
    bySource
      ? `
  CREATE INDEX ${table}_current_source ON ${q} (source) WHERE valid_to IS NULL;`
      : ''
  }`
}

export const up = `
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE setting (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_token (
  id text PRIMARY KEY,
  name text NOT NULL,
  token_hash text NOT NULL UNIQUE,
  scopes text[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz
);

CREATE TABLE discovery_run (
  id text PRIMARY KEY,
  source text NOT NULL,
  scope text NOT NULL CHECK (scope IN ('full', 'delta')),
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  stats jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX discovery_run_source ON discovery_run (source, started_at DESC);

CREATE TABLE identity (${factColumns},
  kind text NOT NULL CHECK (kind IN ('workload', 'service_account', 'iam_user', 'iam_role',
    'api_client', 'oauth_app', 'ci_pipeline', 'ai_agent', 'bot', 'ssh_principal')),
  name text NOT NULL,
  owner_ref text,
  created_by text,
  state text NOT NULL DEFAULT 'active',
  created_at timestamptz,
  last_used_at timestamptz
) WITH (fillfactor = 90);
${factIndexes('identity', false)}
-- Not partial: as-of lists walk it in name order too, filtering versions by their period.
CREATE INDEX identity_name ON identity (name, id);
CREATE INDEX identity_current_kind ON identity (kind, name, id) WHERE valid_to IS NULL;
CREATE INDEX identity_current_source ON identity (source, name, id) WHERE valid_to IS NULL;
CREATE INDEX identity_current_owner ON identity (owner_ref, name, id) WHERE valid_to IS NULL;
CREATE INDEX identity_current_state ON identity (state, name, id) WHERE valid_to IS NULL;
-- A larger pending list lets bulk ingest batch its trigram entries (the default 4 MB flushes often).
CREATE INDEX identity_current_name_trgm ON identity USING gin (name public.gin_trgm_ops)
  WITH (gin_pending_list_limit = 16384) WHERE valid_to IS NULL;

CREATE TABLE credential (${factColumns},
  identity_id uuid,
  identity_ref text,
  credential_type text NOT NULL,
  fingerprint text,
  preview text,
  issuer text,
  created_at timestamptz,
  expires_at timestamptz,
  last_rotated_at timestamptz,
  last_used_at timestamptz,
  state text NOT NULL DEFAULT 'active'
) WITH (fillfactor = 90);
${factIndexes('credential')}
CREATE INDEX credential_current_expires ON credential (expires_at, identity_id) WHERE valid_to IS NULL;
CREATE INDEX credential_current_fingerprint ON credential (fingerprint) WHERE valid_to IS NULL;
-- One index per reference serves both the open versions and the history: an entity has few versions.
CREATE INDEX credential_identity ON credential (identity_id, valid_from);

CREATE TABLE credential_location (${factColumns},
  credential_id uuid NOT NULL,
  credential_ref text NOT NULL,
  location_type text NOT NULL,
  repository text,
  file text,
  line integer,
  commit text,
  host text,
  path text
) WITH (fillfactor = 90);
${factIndexes('credential_location')}
CREATE INDEX credential_location_credential ON credential_location (credential_id, valid_from);

CREATE TABLE owner (${factColumns},
  owner_type text NOT NULL CHECK (owner_type IN ('person', 'team')),
  name text NOT NULL,
  email text,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'departed', 'suspended')),
  team_ref text
) WITH (fillfactor = 90);
${factIndexes('owner')}
CREATE INDEX owner_current_team ON owner (team_ref) WHERE valid_to IS NULL;

CREATE TABLE resource (${factColumns},
  resource_type text NOT NULL,
  name text NOT NULL,
  environment text
) WITH (fillfactor = 90);
${factIndexes('resource')}

CREATE TABLE "grant" (${factColumns},
  identity_id uuid NOT NULL,
  identity_ref text NOT NULL,
  resource_id uuid NOT NULL,
  resource_ref text NOT NULL,
  actions text[] NOT NULL,
  via text
) WITH (fillfactor = 90);
${factIndexes('grant')}
CREATE INDEX grant_identity ON "grant" (identity_id, valid_from);
CREATE INDEX grant_resource ON "grant" (resource_id, valid_from);

CREATE TABLE edge (${factColumns},
  edge_type text NOT NULL CHECK (edge_type IN ('owns', 'created', 'uses_credential',
    'credential_found_in', 'can_assume', 'runs_as', 'delegated_to', 'depends_on')),
  from_type text NOT NULL,
  from_id uuid NOT NULL,
  from_ref text NOT NULL,
  to_type text NOT NULL,
  to_id uuid NOT NULL,
  to_ref text NOT NULL
) WITH (fillfactor = 90);
${factIndexes('edge')}
CREATE INDEX edge_from ON edge (from_id, valid_from);
CREATE INDEX edge_to ON edge (to_id, valid_from);

-- Observed use, aggregated per hour. An observation for the same (identity, resource, action, hour,
-- source) replaces the count, so re-importing a log is idempotent.
CREATE TABLE usage (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  identity_id uuid NOT NULL,
  identity_ref text NOT NULL,
  resource_ref text NOT NULL,
  action text NOT NULL,
  hour timestamptz NOT NULL,
  count integer NOT NULL CHECK (count >= 0),
  source text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (identity_id, resource_ref, action, hour, source)
);
-- The unique key starts with identity_id, so it also serves "usage of one identity".
CREATE INDEX usage_resource_hour ON usage (resource_ref, hour);

CREATE SEQUENCE entry_revision;

CREATE TABLE registration_entry (
  version_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id uuid NOT NULL,
  revision bigint NOT NULL DEFAULT nextval('entry_revision'),
  spiffe_id text NOT NULL,
  parent_id text NOT NULL,
  selectors jsonb NOT NULL,
  x509_svid_ttl integer,
  jwt_svid_ttl integer,
  dns_names text[] NOT NULL DEFAULT '{}',
  federates_with text[] NOT NULL DEFAULT '{}',
  hint text,
  admin boolean NOT NULL DEFAULT false,
  downstream boolean NOT NULL DEFAULT false,
  owner_ref text NOT NULL,
  expires_at timestamptz,
  created_by text,
  valid_from timestamptz NOT NULL DEFAULT now(),
  valid_to timestamptz,
  deleted boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX registration_entry_current_id ON registration_entry (id) WHERE valid_to IS NULL;
CREATE INDEX registration_entry_revision ON registration_entry (revision);
CREATE INDEX registration_entry_parent ON registration_entry (parent_id) WHERE valid_to IS NULL;
CREATE INDEX registration_entry_spiffe_id ON registration_entry (spiffe_id, valid_from);

CREATE TABLE agent (
  id uuid PRIMARY KEY,
  spiffe_id text NOT NULL UNIQUE,
  attestation_type text NOT NULL,
  selectors jsonb NOT NULL DEFAULT '[]'::jsonb,
  serial text,
  expires_at timestamptz,
  banned boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz
);

CREATE TABLE join_token (
  token_hash text PRIMARY KEY,
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  used_by_agent uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text
);

-- Private keys are envelope-encrypted: the data key is wrapped by the key-encryption key (kek_id).
CREATE TABLE ca_key (
  id text PRIMARY KEY,
  purpose text NOT NULL CHECK (purpose IN ('x509_ca', 'jwt')),
  slot text NOT NULL CHECK (slot IN ('prepared', 'active', 'old')),
  algorithm text NOT NULL,
  public_key_pem text NOT NULL,
  encrypted_private_key bytea NOT NULL,
  wrapped_data_key bytea NOT NULL,
  kek_id text NOT NULL,
  certificate_pem text,
  not_before timestamptz,
  not_after timestamptz,
  tainted boolean NOT NULL DEFAULT false,
  revoked boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE issuance (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  svid_type text NOT NULL CHECK (svid_type IN ('x509', 'jwt')),
  serial text,
  jti text,
  spiffe_id text NOT NULL,
  entry_id uuid,
  agent_id uuid,
  not_before timestamptz NOT NULL,
  not_after timestamptz NOT NULL,
  public_key_hash text,
  issued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX issuance_spiffe_id ON issuance (spiffe_id, not_before);
CREATE UNIQUE INDEX issuance_serial ON issuance (serial) WHERE serial IS NOT NULL;
CREATE UNIQUE INDEX issuance_jti ON issuance (jti) WHERE jti IS NOT NULL;

CREATE TABLE revocation (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  target_type text NOT NULL CHECK (target_type IN ('spiffe_id', 'serial', 'jti', 'agent')),
  value text NOT NULL,
  reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  created_by text
);
CREATE INDEX revocation_target ON revocation (target_type, value);

-- The append-only audit and usage log. Each row carries the hash of the previous one. Partitioned by
-- day, and the default partition catches any day whose partition has not been created yet.
CREATE TABLE event (
  seq bigint NOT NULL,
  at timestamptz NOT NULL,
  event_type text NOT NULL,
  actor text,
  subject text,
  resource text,
  action text,
  decision text,
  request_id text,
  data jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  PRIMARY KEY (at, seq)
) PARTITION BY RANGE (at);
CREATE TABLE event_default PARTITION OF event DEFAULT;
CREATE INDEX event_seq ON event (seq);
CREATE INDEX event_subject_at ON event (subject, at);
CREATE INDEX event_resource_at ON event (resource, at);
CREATE INDEX event_type_at ON event (event_type, at);

CREATE TABLE finding (
  id uuid PRIMARY KEY,
  dedup_key text NOT NULL UNIQUE,
  rule text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
  subject_type text NOT NULL,
  subject_id uuid,
  subject_ref text NOT NULL,
  evidence jsonb NOT NULL DEFAULT '{}'::jsonb,
  owner_ref text,
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'resolved')),
  accepted_reason text,
  accepted_until timestamptz,
  first_seen_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  resolved_at timestamptz
);
CREATE INDEX finding_rule_status ON finding (rule, status);
CREATE INDEX finding_owner ON finding (owner_ref, status);
CREATE INDEX finding_subject ON finding (subject_id);

CREATE TABLE policy (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  policy_type text NOT NULL CHECK (policy_type IN ('governance', 'cedar')),
  name text NOT NULL,
  version integer NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text,
  active boolean NOT NULL DEFAULT true,
  UNIQUE (policy_type, name, version)
);
`

/** Runs the script one statement at a time: PGlite's extended protocol takes one per call. */
export async function migrate(db: Kysely<unknown>): Promise<void> {
  for (const statement of splitStatements(up)) await sql.raw(statement).execute(db)
}

export function splitStatements(script: string): string[] {
  return script
    .split(/;\s*\n/)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0)
}
