"""Initial schema: tenants, users, appointments and assignments, sessions, keys, calls, jobs.

Includes the plan's guards (B3 partial unique index on active sessions, A3
assignment guards), whose DDL lives in ``stormproof.reference_app.models.guards``.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

from stormproof.reference_app.models.guards import GUARDS

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = """
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE companies (
    id uuid PRIMARY KEY,
    name varchar(200) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies(id),
    email varchar(320) NOT NULL,
    name varchar(200) NOT NULL,
    role varchar(20) NOT NULL CHECK (role IN ('manager', 'rep')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_users_company_id ON users (company_id);
CREATE UNIQUE INDEX ux_users_company_email ON users (company_id, email);

CREATE TABLE appointments (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies(id),
    title varchar(200) NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'scheduled',
    assigned_rep_id uuid NULL REFERENCES users(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_appointments_window CHECK (ends_at > starts_at)
);
CREATE INDEX ix_appointments_company_id ON appointments (company_id);

CREATE TABLE appointment_assignments (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies(id),
    appointment_id uuid NOT NULL REFERENCES appointments(id) ON DELETE CASCADE,
    rep_id uuid NOT NULL REFERENCES users(id),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'released')),
    released_at timestamptz NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_appointment_assignments_company_id ON appointment_assignments (company_id);
CREATE INDEX ix_appointment_assignments_appointment_id ON appointment_assignments (appointment_id);
CREATE INDEX ix_appointment_assignments_rep_id ON appointment_assignments (rep_id);

CREATE TABLE recording_sessions (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies(id),
    appointment_id uuid NOT NULL REFERENCES appointments(id) ON DELETE CASCADE,
    started_by uuid NOT NULL REFERENCES users(id),
    status varchar(20) NOT NULL CHECK (status IN ('pending', 'recording', 'stopped', 'failed')),
    source varchar(20) NOT NULL DEFAULT 'sessions',
    stopped_at timestamptz NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_recording_sessions_company_id ON recording_sessions (company_id);
CREATE INDEX ix_recording_sessions_appointment_id ON recording_sessions (appointment_id);

CREATE TABLE idempotency_keys (
    company_id uuid NOT NULL,
    key varchar(255) NOT NULL,
    fingerprint varchar(64) NOT NULL,
    method varchar(10) NOT NULL,
    path varchar(500) NOT NULL,
    state varchar(20) NOT NULL CHECK (state IN ('in_flight', 'completed')),
    lease_expires_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    response_status integer NULL,
    response_content_type varchar(100) NULL,
    response_body bytea NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, key)
);
CREATE INDEX ix_idempotency_keys_expires_at ON idempotency_keys (expires_at);

CREATE TABLE calls (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies(id),
    appointment_id uuid NULL REFERENCES appointments(id) ON DELETE SET NULL,
    recording_session_id uuid NULL REFERENCES recording_sessions(id) ON DELETE SET NULL,
    status varchar(20) NOT NULL DEFAULT 'submitted',
    lead_score integer NULL,
    outcome varchar(20) NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_calls_company_id ON calls (company_id);

CREATE TABLE shunya_jobs (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies(id),
    call_id uuid NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    shunya_job_id varchar(64) NULL,
    status varchar(20) NOT NULL DEFAULT 'pending',
    processed_output_hash varchar(64) NULL,
    processed_at timestamptz NULL,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_shunya_jobs_company_id ON shunya_jobs (company_id);
CREATE UNIQUE INDEX idx_shunya_jobs_unique ON shunya_jobs (shunya_job_id, company_id)
    WHERE shunya_job_id IS NOT NULL;

CREATE TABLE call_analyses (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies(id),
    call_id uuid NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    shunya_job_id varchar(64) NOT NULL,
    output_hash varchar(64) NOT NULL,
    result json NOT NULL,
    applied_by varchar(20) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_call_analyses_company_id ON call_analyses (company_id);
"""


def upgrade() -> None:
    op.execute(TABLES)
    for guard in GUARDS:
        if guard.table != "call_analyses":  # added by 0002
            op.execute(guard.create_sql)


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS call_analyses, shunya_jobs, calls, idempotency_keys, "
        "recording_sessions, appointment_assignments, appointments, users, companies CASCADE"
    )
