import { sql, type Kysely } from 'kysely'
import { splitStatements } from './0001-initial.js'

/**
 * Managed secrets and their rotations (src/lifecycle/rotation, docs/rotation.md). Values are only
 * ever stored sealed under the installation's key-encryption key (`*_sealed`, envelope blobs);
 * `*_meta` columns hold what a rotator may show (a username, an access key id), never a secret.
 * A rotation is a resumable state machine: one row per rotation with its current state, one
 * `secret_rotation_step` row per step taken (the history `tessera secret show` prints).
 */
export const up = `
CREATE TABLE managed_secret (
  name text PRIMARY KEY,
  rotator text NOT NULL,
  config_public jsonb NOT NULL DEFAULT '{}'::jsonb,
  config_sealed bytea NOT NULL,
  consumers text[] NOT NULL DEFAULT '{}',
  period_seconds integer NOT NULL CHECK (period_seconds > 0),
  rotation_window text,
  grace_seconds integer NOT NULL CHECK (grace_seconds >= 0),
  kek_id text NOT NULL,
  version integer NOT NULL DEFAULT 0,
  value_sealed bytea,
  value_meta jsonb NOT NULL DEFAULT '{}'::jsonb,
  fingerprint text,
  previous_sealed bytea,
  previous_meta jsonb,
  previous_fingerprint text,
  previous_valid_until timestamptz,
  credential_ref text NOT NULL,
  identity_ref text,
  created_at timestamptz NOT NULL,
  created_by text,
  last_rotated_at timestamptz,
  next_rotation_at timestamptz NOT NULL,
  last_error text,
  consecutive_failures integer NOT NULL DEFAULT 0
);
CREATE INDEX managed_secret_next_rotation ON managed_secret (next_rotation_at);

CREATE TABLE secret_rotation (
  id uuid PRIMARY KEY,
  secret_name text NOT NULL REFERENCES managed_secret (name) ON DELETE CASCADE,
  state text NOT NULL CHECK (state IN ('pending', 'created', 'verified', 'activated', 'grace', 'revoked', 'done', 'failed')),
  reason text NOT NULL,
  requested_by text,
  from_version integer NOT NULL,
  new_sealed bytea,
  new_meta jsonb,
  new_fingerprint text,
  grace_until timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  error text,
  started_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  finished_at timestamptz
);
CREATE UNIQUE INDEX secret_rotation_open ON secret_rotation (secret_name) WHERE state NOT IN ('done', 'failed');
CREATE INDEX secret_rotation_history ON secret_rotation (secret_name, started_at);

CREATE TABLE secret_rotation_step (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rotation_id uuid NOT NULL REFERENCES secret_rotation (id) ON DELETE CASCADE,
  state text NOT NULL,
  at timestamptz NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX secret_rotation_step_rotation ON secret_rotation_step (rotation_id, seq);
`

export async function migrate(db: Kysely<unknown>): Promise<void> {
  for (const statement of splitStatements(up)) await sql.raw(statement).execute(db)
}
