"""Background work: task ledger, dead letters, and the job-applied-once guard.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE task_records (
    task_id varchar(64) PRIMARY KEY,
    name varchar(100) NOT NULL,
    company_id uuid NULL,
    dedupe_key varchar(200) NULL,
    args json NOT NULL,
    state varchar(20) NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    trace_id varchar(64) NULL,
    last_error text NULL,
    finished_at timestamptz NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_task_records_company_id ON task_records (company_id);
CREATE INDEX ix_task_records_state ON task_records (state);

CREATE TABLE dead_letters (
    id uuid PRIMARY KEY,
    company_id uuid NULL,
    task_id varchar(64) NOT NULL,
    task_name varchar(100) NOT NULL,
    args json NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL,
    trace_id varchar(64) NULL,
    status varchar(20) NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'retried')),
    retried_task_id varchar(64) NULL,
    retried_at timestamptz NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_dead_letters_company_id ON dead_letters (company_id);

ALTER TABLE shunya_jobs ADD COLUMN trace_id varchar(64) NULL;
ALTER TABLE shunya_jobs ADD COLUMN error text NULL;
"""


def upgrade() -> None:
    from stormproof.reference_app.models.guards import GUARDS

    op.execute(DDL)
    for guard in GUARDS:
        if guard.name == "ux_call_analyses_job":
            op.execute(guard.create_sql)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ux_call_analyses_job")
    op.execute("ALTER TABLE shunya_jobs DROP COLUMN IF EXISTS trace_id, DROP COLUMN IF EXISTS error")
    op.execute("DROP TABLE IF EXISTS dead_letters, task_records")
