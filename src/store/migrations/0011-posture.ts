import { sql, type Kysely } from 'kysely'
import { splitStatements } from './0001-initial.js'

/**
 * Posture and offboarding. Findings learn which report last saw them (a complete report resolves
 * the rule's findings it did not see, even when two reports share one clock instant). Risk scores
 * are one row per identity, rewritten by each posture run. Offboarding plans and their steps keep
 * each step's state, so an interrupted execution resumes without doing a step twice.
 */
export const up = `
ALTER TABLE finding ADD COLUMN last_report text;
ALTER TABLE finding ADD COLUMN identity_id uuid;
CREATE INDEX finding_status_severity ON finding (status, severity);
CREATE INDEX finding_identity ON finding (identity_id) WHERE status = 'open';

CREATE TABLE risk_score (
  identity_id uuid PRIMARY KEY,
  identity_ref text NOT NULL,
  owner_ref text,
  score double precision NOT NULL,
  findings integer NOT NULL,
  max_severity text NOT NULL,
  blast_radius integer NOT NULL,
  computed_at timestamptz NOT NULL
);
CREATE INDEX risk_score_score ON risk_score (score DESC);
CREATE INDEX risk_score_owner ON risk_score (owner_ref, score DESC);

-- The trust-path walk reads edges backwards by type, and grants by resource.
CREATE INDEX edge_current_to_type ON edge (to_id, edge_type) WHERE valid_to IS NULL;
CREATE INDEX edge_current_from_type ON edge (from_id, edge_type) WHERE valid_to IS NULL;
CREATE INDEX credential_location_current_repository ON credential_location (repository)
  WHERE valid_to IS NULL AND repository IS NOT NULL;

CREATE TABLE offboarding_plan (
  id uuid PRIMARY KEY,
  subject_type text NOT NULL CHECK (subject_type IN ('person', 'team', 'service')),
  subject_ref text NOT NULL,
  status text NOT NULL CHECK (status IN ('planned', 'executing', 'done', 'failed')),
  reassign_to text,
  summary jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL,
  created_by text,
  updated_at timestamptz NOT NULL,
  finished_at timestamptz
);
CREATE INDEX offboarding_plan_subject ON offboarding_plan (subject_type, subject_ref, created_at DESC);

CREATE TABLE offboarding_step (
  plan_id uuid NOT NULL REFERENCES offboarding_plan (id),
  seq integer NOT NULL,
  action text NOT NULL CHECK (action IN ('reassign', 'rotate', 'revoke', 'disable')),
  target_type text NOT NULL CHECK (target_type IN ('identity', 'credential')),
  target_id uuid NOT NULL,
  target_ref text NOT NULL,
  reason text NOT NULL,
  params jsonb NOT NULL DEFAULT '{}'::jsonb,
  status text NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  audited boolean NOT NULL DEFAULT false,
  result jsonb,
  error text,
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (plan_id, seq)
);
`

export async function migrate(db: Kysely<unknown>): Promise<void> {
  for (const statement of splitStatements(up)) await sql.raw(statement).execute(db)
}
