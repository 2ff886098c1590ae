"""Data lifecycle (plan F1 to F3): retention policies, deletion requests and audit, consents.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE retention_policies (
    company_id uuid PRIMARY KEY REFERENCES companies (id),
    call_days integer NOT NULL CHECK (call_days >= 1),
    appointment_days integer NOT NULL CHECK (appointment_days >= 1),
    updated_by uuid NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE consents (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies (id),
    appointment_id uuid NOT NULL REFERENCES appointments (id) ON DELETE CASCADE,
    scope varchar(20) NOT NULL CHECK (scope IN ('recording', 'analysis')),
    granted_at timestamptz NOT NULL,
    ip varchar(64) NULL,
    user_agent varchar(512) NULL,
    evidence text NOT NULL,
    recorded_by uuid NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_consents_company_id ON consents (company_id);
CREATE INDEX ix_consents_appointment_scope ON consents (appointment_id, scope);

CREATE TABLE deletion_requests (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies (id),
    requested_by uuid NOT NULL,
    scope varchar(20) NOT NULL CHECK (scope IN ('appointment', 'company')),
    target_id uuid NOT NULL,
    token_hash varchar(64) NOT NULL,
    counts json NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'executed')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_deletion_requests_company_id ON deletion_requests (company_id);

-- No foreign keys: an audit row must survive whatever it describes.
CREATE TABLE deletion_audit (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    requested_by uuid NOT NULL,
    confirmed_by uuid NOT NULL,
    scope varchar(20) NOT NULL,
    target_id uuid NOT NULL,
    counts json NOT NULL,
    requested_at timestamptz NOT NULL,
    executed_at timestamptz NOT NULL
);
CREATE INDEX ix_deletion_audit_company_id ON deletion_audit (company_id);

-- Retention scans by age within a company.
CREATE INDEX ix_calls_company_created ON calls (company_id, created_at);
CREATE INDEX ix_appointments_company_ends ON appointments (company_id, ends_at);
CREATE INDEX ix_calls_appointment_id ON calls (appointment_id);
CREATE INDEX ix_calls_recording_session_id ON calls (recording_session_id);
CREATE INDEX ix_shunya_jobs_call_id ON shunya_jobs (call_id);
CREATE INDEX ix_call_analyses_call_id ON call_analyses (call_id);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    op.execute(
        "DROP INDEX IF EXISTS ix_calls_company_created, ix_appointments_company_ends, ix_calls_appointment_id, "
        "ix_calls_recording_session_id, ix_shunya_jobs_call_id, ix_call_analyses_call_id"
    )
    op.execute("DROP TABLE IF EXISTS deletion_audit, deletion_requests, consents, retention_policies")
